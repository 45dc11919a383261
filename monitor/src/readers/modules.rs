//! Loaded modules: walk the `modules` list of `struct module`.

use crate::error::GuestError;
use crate::guest::view::GuestView;
use crate::kaslr::Kernel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub addr: u64,
    pub name: String,
    /// Raw `enum module_state`.
    pub state: u32,
    /// /proc/modules wording: Live, Loading, Unloading, Unformed.
    pub state_name: String,
    /// Core text: base and text size.
    pub text_start: u64,
    pub text_size: u64,
    /// Whole core allocation size.
    pub core_size: u64,
    pub sig_ok: Option<bool>,
    pub taints: Option<u64>,
}

fn state_name<V: GuestView + ?Sized>(k: &Kernel<V>, state: u32) -> String {
    let name = k.profile.enums.get("module_state").and_then(|e| {
        e.iter()
            .find(|(_, &v)| v == i64::from(state))
            .map(|(n, _)| n.as_str())
    });
    match name {
        Some("MODULE_STATE_LIVE") => "Live".into(),
        Some("MODULE_STATE_COMING") => "Loading".into(),
        Some("MODULE_STATE_GOING") => "Unloading".into(),
        Some("MODULE_STATE_UNFORMED") => "Unformed".into(),
        _ => format!("state{state}"),
    }
}

/// (text base, text size, total size) from 6.1's `core_layout` or 6.4+'s
/// `mem[MOD_TEXT]`.
fn text_range<V: GuestView + ?Sized>(k: &Kernel<V>, m: u64) -> Result<(u64, u64, u64), GuestError> {
    if let Ok(off) = k.profile.offset("module", "core_layout") {
        let l = m + off;
        let base = k.field(l, "module_layout", "base")?;
        let size = k.field(l, "module_layout", "size")?;
        let text = k.field(l, "module_layout", "text_size")?;
        return Ok((base, text, size));
    }
    let off = k.profile.offset("module", "mem")?;
    let mm = m + off;
    let base = k.field(mm, "module_memory", "base")?;
    let size = k.field(mm, "module_memory", "size")?;
    Ok((base, size, size))
}

pub fn read<V: GuestView + ?Sized>(k: &Kernel<V>) -> Result<Vec<ModuleInfo>, GuestError> {
    let head = k.sym("modules")?;
    let list_off = k.profile.offset("module", "list")?;
    let mut out = vec![];
    for node in super::walk_list(k, head, 65_536)? {
        let m = node.wrapping_sub(list_off);
        let state = k.field(m, "module", "state")? as u32;
        let (text_start, text_size, core_size) = text_range(k, m)?;
        out.push(ModuleInfo {
            addr: m,
            name: k.str_field(m, "module", "name")?,
            state,
            state_name: state_name(k, state),
            text_start,
            text_size,
            core_size,
            sig_ok: k.field(m, "module", "sig_ok").ok().map(|v| v & 1 != 0),
            taints: k.field(m, "module", "taints").ok(),
        });
    }
    Ok(out)
}
