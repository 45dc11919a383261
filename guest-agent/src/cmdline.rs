//! The agent's options on the kernel command line. Linux keeps parameters
//! with a dot (`vigil.x=y`) in /proc/cmdline without handing them to init.

/// What the command line asks the agent to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub reboot: bool,
    pub run: Option<String>,
}

impl Args {
    pub fn from_proc() -> Self {
        std::fs::read_to_string("/proc/cmdline")
            .map(|s| Self::parse(&s))
            .unwrap_or_default()
    }

    pub fn parse(cmdline: &str) -> Self {
        let mut args = Args::default();
        for word in split(cmdline) {
            match word.split_once('=') {
                Some(("vigil.reboot", v)) => args.reboot = v == "1" || v == "y",
                Some(("vigil.run", v)) => args.run = Some(v.to_owned()),
                _ => {}
            }
        }
        args
    }
}

/// Splits like the kernel's `next_arg`: spaces separate words, double
/// quotes group them and are removed.
fn split(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in cmdline.trim().chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reboot_and_quoted_run() {
        let a = Args::parse(
            "console=ttyS0 vigil.reboot=1 vigil.run=\"echo hi; cat /proc/modules\" quiet\n",
        );
        assert!(a.reboot);
        assert_eq!(a.run.as_deref(), Some("echo hi; cat /proc/modules"));
        assert_eq!(Args::parse("quiet"), Args::default());
        assert_eq!(
            Args::parse("vigil.run=\"unterminated").run.as_deref(),
            Some("unterminated")
        );
    }
}
