//! A loopback stand-in for the spec-kitty SaaS, for tests and benchmarks. Placeholder.
