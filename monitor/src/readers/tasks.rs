//! Processes: walk `init_task.tasks` (thread-group leaders, as /proc lists
//! them) and read each task's credentials.

use crate::error::GuestError;
use crate::guest::view::GuestView;
use crate::kaslr::Kernel;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub addr: u64,
    pub pid: i32,
    pub tgid: i32,
    pub comm: String,
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub caps: Caps,
    /// `cred` differs from `real_cred` (an override is in effect).
    pub cred_override: bool,
}

const TASK_FIELDS: &[&str] = &["pid", "tgid", "comm", "real_cred", "cred"];
const CRED_FIELDS: &[&str] = &[
    "uid",
    "euid",
    "suid",
    "fsuid",
    "gid",
    "egid",
    "cap_inheritable",
    "cap_permitted",
    "cap_effective",
    "cap_bset",
    "cap_ambient",
];

pub fn read_task<V: GuestView + ?Sized>(k: &Kernel<V>, t: u64) -> Result<TaskInfo, GuestError> {
    let p = k.profile;
    let ts = k.snapshot(t, "task_struct", TASK_FIELDS)?;
    let real = ts.get(p, "real_cred")?;
    let cred = ts.get(p, "cred")?;
    let c = k.snapshot(real, "cred", CRED_FIELDS)?;
    let id = |f: &str| c.get(p, f).map(|v| v as u32);
    Ok(TaskInfo {
        addr: t,
        pid: ts.get(p, "pid")? as i32,
        tgid: ts.get(p, "tgid")? as i32,
        comm: ts.string(p, "comm")?,
        uid: id("uid")?,
        euid: id("euid")?,
        suid: id("suid")?,
        fsuid: id("fsuid")?,
        gid: id("gid")?,
        egid: id("egid")?,
        caps: Caps {
            inheritable: c.get(p, "cap_inheritable")?,
            permitted: c.get(p, "cap_permitted")?,
            effective: c.get(p, "cap_effective")?,
            bounding: c.get(p, "cap_bset")?,
            ambient: c.get(p, "cap_ambient")?,
        },
        cred_override: cred != real,
    })
}

/// All tasks on the task list, starting with init_task (pid 0).
pub fn read<V: GuestView + ?Sized>(k: &Kernel<V>) -> Result<Vec<TaskInfo>, GuestError> {
    let init = k.sym("init_task")?;
    let off = k.profile.offset("task_struct", "tasks")?;
    let mut out = vec![read_task(k, init)?];
    for node in super::walk_list(k, init + off, super::MAX_LIST)? {
        out.push(read_task(k, node.wrapping_sub(off))?);
    }
    Ok(out)
}
