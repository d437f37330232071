"""Planning and running a matrix: the cell plan, the runner, jobs and shards, what a run prints and keeps."""
