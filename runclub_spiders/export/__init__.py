"""Writing the app's files: row shapes, feeds, manifest, coverage report, validation."""
