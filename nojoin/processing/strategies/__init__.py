"""Processing strategies behind `contract.ProcessingStrategy`: local (this machine's engine in a
child process) and remote (the backend's job API)."""
