//! Running a Linux guest wherever this host can: directly on its KVM, or
//! inside the nested test host when its KVM cannot boot Linux (such as a
//! software KVM). Demos, benchmarks and guest tests all go through here,
//! and each says which path ran.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vigil_images::testhost::{self, GuestPath, Job, Limits, FAST};

/// A `vigil` command line to run next to a Linux guest, with the files it
/// needs. Arguments refer to staged files through [`GuestCommand::file`].
pub struct GuestCommand {
    vigil: PathBuf,
    args: Vec<String>,
    files: Vec<(PathBuf, String)>,
    env: Vec<(String, String)>,
}

/// How it went: exit status and everything printed on stdout.
#[derive(Debug)]
pub struct GuestRun {
    pub path: GuestPath,
    pub status: i32,
    pub output: String,
}

impl GuestCommand {
    pub fn new(vigil: impl Into<PathBuf>) -> Self {
        GuestCommand {
            vigil: vigil.into(),
            args: Vec::new(),
            files: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Stages `src` under `name`; returns the path to use in arguments.
    pub fn file(&mut self, src: &Path, name: &str) -> String {
        self.files.push((src.to_owned(), name.to_owned()));
        format!("{FAST}/{name}")
    }

    /// Points vigil's cache at the staged tree (`cache/...` files).
    pub fn staged_cache(&mut self) {
        self.env
            .push(("VIGIL_CACHE".into(), format!("{FAST}/cache")));
    }

    pub fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, args: I) -> &mut Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// `{fast}/name` back to the original file, for the direct path.
    fn resolve(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (src, name) in &self.files {
            out = out.replace(&format!("{FAST}/{name}"), &src.display().to_string());
        }
        out.replace(
            &format!("{FAST}/cache"),
            &vigil_images::cache_dir().display().to_string(),
        )
    }

    /// Runs it here or in the test host, teeing stdout, and says which.
    pub fn run(&self) -> anyhow::Result<GuestRun> {
        let path = GuestPath::detect();
        eprintln!("{}", path.describe());
        let (status, output) = match path {
            GuestPath::Direct => self.run_direct()?,
            GuestPath::Nested(_) => {
                let mut job = Job::new(&self.vigil, self.args.clone());
                job.stage = self.files.clone();
                job.env.extend(self.env.iter().cloned());
                let done = testhost::run(&job, Limits::default())?;
                (done.status, done.console)
            }
        };
        Ok(GuestRun {
            path,
            status,
            output,
        })
    }

    fn run_direct(&self) -> anyhow::Result<(i32, String)> {
        let mut cmd = Command::new(&self.vigil);
        cmd.args(self.args.iter().map(|a| self.resolve(a)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, self.resolve(v));
        }
        let mut child = cmd.spawn()?;
        let mut output = String::new();
        if let Some(stdout) = child.stdout.take() {
            let mut out = std::io::stdout();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(out, "{line}");
                output.push_str(&line);
                output.push('\n');
            }
        }
        let status = child.wait()?.code().unwrap_or(-1);
        Ok((status, output))
    }
}

/// For a test that needs a real KVM (not merely /dev/kvm): returns true
/// when the test should run here. Otherwise it runs the test named `test`
/// of the current test binary inside the nested test host, panics if it
/// failed there, and returns false so the caller stops.
pub fn run_test_on_real_kvm(test: &str) -> bool {
    let path = GuestPath::detect();
    eprintln!("{}", path.describe());
    if path == GuestPath::Direct {
        return true;
    }
    testhost::run_test_inside(test);
    false
}
