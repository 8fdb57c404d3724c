"""Studies that run many ntkexp runs together (resumable, parallel) and gather one table."""
