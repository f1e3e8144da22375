//! Codegen errors: every error names the contract file and the JSON pointer it is about.

use std::fmt;

/// A refusal to generate. `file` is relative to the contracts directory (for example
/// `schemas/envelope.schema.json`); `pointer` is a JSON pointer into that file (`""` is the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodegenError {
    pub file: String,
    pub pointer: String,
    pub message: String,
}

impl CodegenError {
    pub fn new(
        file: impl Into<String>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "contracts/{}#{}: {}",
            self.file, self.pointer, self.message
        )
    }
}

impl std::error::Error for CodegenError {}

/// Escape one JSON pointer token (RFC 6901).
pub fn ptr_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `base` + `/token`, escaped.
pub fn ptr_join(base: &str, token: &str) -> String {
    format!("{base}/{}", ptr_token(token))
}

pub type Result<T> = std::result::Result<T, CodegenError>;
