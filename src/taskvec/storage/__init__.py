"""The bottom floor: run folders (atomic writes, status, resume), tables as CSV + Markdown, caches."""
