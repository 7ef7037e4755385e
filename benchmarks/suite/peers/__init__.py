"""One module per proxy under test; each turns the scenarios into its own configuration."""
