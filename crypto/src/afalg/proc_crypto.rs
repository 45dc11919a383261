//! Parser for /proc/crypto (blank-line separated "key : value" records).

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcEntry {
    pub name: String,
    pub driver: String,
    pub module: String,
    pub priority: u32,
    pub alg_type: String,
    pub internal: bool,
    pub blocksize: usize,
    pub ivsize: usize,
    pub min_keysize: usize,
    pub max_keysize: usize,
    pub digestsize: usize,
    pub maxauthsize: usize,
}

pub fn parse(text: &str) -> Vec<ProcEntry> {
    let mut out = Vec::new();
    let mut cur = ProcEntry::default();
    let num = |v: &str| v.parse::<usize>().unwrap_or(0);
    for line in text.lines().chain(std::iter::once("")) {
        let Some((k, v)) = line.split_once(':') else {
            if !cur.name.is_empty() && !cur.driver.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur = ProcEntry::default();
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "name" => cur.name = v.into(),
            "driver" => cur.driver = v.into(),
            "module" => cur.module = v.into(),
            "priority" => cur.priority = v.parse().unwrap_or(0),
            "type" => cur.alg_type = v.into(),
            "internal" => cur.internal = v == "yes",
            "blocksize" => cur.blocksize = num(v),
            "ivsize" => cur.ivsize = num(v),
            "min keysize" => cur.min_keysize = num(v),
            "max keysize" => cur.max_keysize = num(v),
            "digestsize" => cur.digestsize = num(v),
            "maxauthsize" => cur.maxauthsize = num(v),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "name         : xts(aes)\ndriver       : xts-aes-aesni\nmodule       : aesni_intel\npriority     : 401\nrefcnt       : 1\nselftest     : passed\ninternal     : no\ntype         : skcipher\nasync        : yes\nblocksize    : 16\nmin keysize  : 32\nmax keysize  : 64\nivsize       : 16\n\nname         : __xts(aes)\ndriver       : __xts-aes-aesni\nmodule       : aesni_intel\npriority     : 401\ninternal     : yes\ntype         : skcipher\n\nname         : sha256\ndriver       : sha256-ni\nmodule       : sha256_ssse3\npriority     : 250\ninternal     : no\ntype         : shash\nblocksize    : 64\ndigestsize   : 32\n";

    #[test]
    fn parses_kernel_records() {
        let e = parse(SAMPLE);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].driver, "xts-aes-aesni");
        assert_eq!(e[0].priority, 401);
        assert_eq!(e[0].max_keysize, 64);
        assert!(e[1].internal);
        assert_eq!(e[2].digestsize, 32);
        let impls = crate::afalg::impls_from_entries(&e);
        // The internal __xts(aes) is not offered.
        assert_eq!(impls.len(), 2);
        assert_eq!(impls[0].kernel_priority, Some(401));
        assert_eq!(impls[0].priority, crate::afalg::AFALG_PRIORITY);
    }

    #[test]
    fn survives_garbage() {
        assert!(parse("::::\n\nname: x\n\x00\n")
            .iter()
            .all(|e| e.driver.is_empty() || !e.name.is_empty()));
    }
}
