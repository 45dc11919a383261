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
                // The kernel command line cannot quote a double quote:
                // commands that need one come base64-encoded.
                Some(("vigil.run64", v)) => {
                    args.run = Some(
                        base64_decode(v)
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_else(|| {
                                "echo 'vigil-agent: bad vigil.run64'; exit 2".into()
                            }),
                    )
                }
                _ => {}
            }
        }
        args
    }
}

/// Standard base64 (padding optional); None on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
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

    #[test]
    fn run64_carries_quotes() {
        // base64 of: echo "a b"; exit 3
        let a = Args::parse("vigil.run64=ZWNobyAiYSBiIjsgZXhpdCAz vigil.reboot=1");
        assert_eq!(a.run.as_deref(), Some("echo \"a b\"; exit 3"));
        assert_eq!(base64_decode("aGk="), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("a*b"), None);
        let bad = Args::parse("vigil.run64=%%%");
        assert!(bad.run.unwrap().contains("bad vigil.run64"));
    }
}
