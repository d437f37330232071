"""Building the .NET programs and TorchSharp from source, and whether a source build runs on a
released native library."""
