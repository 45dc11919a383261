//! Lockdown level: `kernel_locked_down` holds the highest lockdown_reason
//! in force (LOCKDOWN_NONE, LOCKDOWN_INTEGRITY_MAX or
//! LOCKDOWN_CONFIDENTIALITY_MAX).

use crate::error::GuestError;
use crate::guest::view::GuestView;
use crate::kaslr::Kernel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Integrity,
    Confidentiality,
}

impl Level {
    /// The word /sys/kernel/security/lockdown shows in brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Integrity => "integrity",
            Level::Confidentiality => "confidentiality",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockdown {
    pub level: Level,
    pub raw: u32,
}

pub fn read<V: GuestView + ?Sized>(k: &Kernel<V>) -> Result<Lockdown, GuestError> {
    let raw = k.u32(k.sym("kernel_locked_down")?)?;
    let e = |n: &str| {
        k.profile
            .enum_value("lockdown_reason", n)
            .ok_or_else(|| GuestError::ProfileLacks(format!("lockdown_reason::{n}")))
    };
    let (imax, cmax) = (
        e("LOCKDOWN_INTEGRITY_MAX")?,
        e("LOCKDOWN_CONFIDENTIALITY_MAX")?,
    );
    let level = match i64::from(raw) {
        0 => Level::None,
        v if v <= imax => Level::Integrity,
        v if v <= cmax => Level::Confidentiality,
        v => {
            return Err(GuestError::Corrupt(format!(
                "kernel_locked_down = {v} beyond {cmax}"
            )))
        }
    };
    Ok(Lockdown { level, raw })
}
