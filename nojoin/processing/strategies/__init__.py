"""Processing strategies behind `contract.ProcessingStrategy`: local (`local_strategy`: this
machine's engine in a child process) and remote (`remote_strategy`: the backend's job API, with
its errors in `remote_errors`)."""
