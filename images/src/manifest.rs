//! A record of every input and output of an image build, with SHA-256s.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Input {
    pub name: String,
    pub version: String,
    pub file: PathBuf,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Output {
    pub file: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub image: String,
    pub kernel_release: String,
    pub inputs: Vec<Input>,
    /// Modules in the initramfs, in load order.
    pub modules: Vec<String>,
    /// Files added through `BuildOptions::extra_files`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_files: Vec<Input>,
    pub outputs: Vec<Output>,
}
