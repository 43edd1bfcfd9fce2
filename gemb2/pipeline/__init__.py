"""The jobs that join loaders, model and store: embedding a tree of files, answering a query."""
