"""Chain-facing side of Trusted Data Space: configuration, the embedded node, the compiler,
contract clients, the job listener and runner, and the `tds` command line."""
