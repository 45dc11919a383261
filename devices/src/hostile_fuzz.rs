//! Randomised hostile queues: random descriptor tables (bad addresses,
//! indirect flags, loops, wild next indices), random avail rings and random
//! request headers. The devices must not panic and must serve a good
//! request on a fresh queue afterwards. A deterministic xorshift keeps runs
//! reproducible without extra dependencies.

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress};

use crate::blk::request::{VIRTIO_BLK_S_OK, VIRTIO_BLK_T_IN};
use crate::blk::{BlkConfig, BlkDevice, BlockBackend};
use crate::guest_write::ProtectedRanges;
use crate::rng::{GetrandomSource, RngDevice};
use crate::test_utils::*;
use crate::virtio::VirtioDevice;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// In-memory disk so the fuzz loop does not touch the filesystem.
struct MemDisk(std::sync::Mutex<Vec<u8>>);
impl BlockBackend for MemDisk {
    fn len(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let d = self.0.lock().unwrap();
        let o = offset as usize;
        buf.copy_from_slice(
            d.get(o..o + buf.len())
                .ok_or(std::io::ErrorKind::InvalidInput)?,
        );
        Ok(())
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let mut d = self.0.lock().unwrap();
        let o = offset as usize;
        d.get_mut(o..o + buf.len())
            .ok_or(std::io::ErrorKind::InvalidInput)?
            .copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn discard(&self, offset: u64, len: u64) -> std::io::Result<()> {
        self.write_zeroes(offset, len, true)
    }
    fn write_zeroes(&self, offset: u64, len: u64, _may_unmap: bool) -> std::io::Result<()> {
        self.write_at(&vec![0; len as usize], offset)
    }
}

fn random_addr(r: &mut XorShift) -> u64 {
    match r.below(6) {
        0 => MEM_SIZE - r.below(64),
        1 => r.next(),
        2 => 0x400 + r.below(0x100), // on top of the rings themselves
        _ => 0x10000 + r.below(0x4000),
    }
}

fn random_round(r: &mut XorShift, d: &Driver) {
    let mem = d.mq.desc_table();
    for i in 0..16u16 {
        let len = match r.below(4) {
            0 => r.next() as u32,
            1 => 16,
            2 => 1,
            _ => r.below(4096) as u32,
        };
        let flags = r.below(8) as u16; // NEXT | WRITE | INDIRECT
        let next = if r.below(4) == 0 {
            r.next() as u16
        } else {
            r.below(16) as u16
        };
        mem.store(i, Driver::desc(random_addr(r), len, flags, next))
            .unwrap();
    }
    for i in 0..16 {
        d.mq.avail()
            .ring()
            .ref_at(i)
            .unwrap()
            .store(if r.below(8) == 0 {
                r.next() as u16
            } else {
                r.below(16) as u16
            });
    }
    let idx = d.mq.avail().idx().load();
    let bump = if r.below(8) == 0 {
        r.next() as u16
    } else {
        r.below(17) as u16
    };
    d.mq.avail().idx().store(idx.wrapping_add(bump));
}

#[test]
fn random_hostile_queues_never_panic() {
    let mut r = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..300 {
        let mem = memory();
        let mut junk = vec![0u8; 0x4000];
        junk.iter_mut().for_each(|b| *b = r.next() as u8);
        // Make some headers plausible so execution paths run too.
        for h in (0..0x4000).step_by(0x40) {
            junk[h] = [0u8, 1, 4, 8, 11, 13, 99][r.below(7) as usize];
            junk[h + 1..h + 4].fill(0);
            junk[h + 8..h + 16].copy_from_slice(&r.below(200).to_le_bytes());
        }
        mem.write_slice(&junk, GuestAddress(0x10000)).unwrap();
        let prot = ProtectedRanges::new();
        prot.add(0x12000, 0x800);
        let d = Driver::new(&mem, 16);
        let irq = Arc::new(CountingInterrupt::default());
        if round % 2 == 0 {
            let disk = Arc::new(MemDisk(std::sync::Mutex::new(vec![0x11; 64 * 1024])));
            let mut blk = BlkDevice::new(
                disk,
                BlkConfig {
                    queue_size: 16,
                    ..Default::default()
                },
            )
            .unwrap();
            blk.activate(params(&mem, &prot, vec![d.queue()], irq))
                .unwrap();
            for _ in 0..4 {
                random_round(&mut r, &d);
                blk.process_queue(0);
            }
            // A fresh queue elsewhere still gets served.
            let mut good = Driver::new(&mem, 16);
            let fresh = good.queue();
            blk.reset();
            blk.activate(params(
                &mem,
                &prot,
                vec![fresh],
                Arc::new(CountingInterrupt::default()),
            ))
            .unwrap();
            mem.write_obj(VIRTIO_BLK_T_IN, GuestAddress(0x20000))
                .unwrap();
            mem.write_obj(1u64, GuestAddress(0x20008)).unwrap();
            good.chain(&[
                (0x20000, 16, 0),
                (0x21000, 512, F_WRITE),
                (0x22000, 1, F_WRITE),
            ]);
            assert_eq!(blk.process_queue(0), 1, "round {round}");
            assert_eq!(
                mem.read_obj::<u8>(GuestAddress(0x22000)).unwrap(),
                VIRTIO_BLK_S_OK
            );
        } else {
            let mut rng = RngDevice::new(Box::new(GetrandomSource), None).unwrap();
            rng.activate(params(&mem, &prot, vec![d.queue()], irq))
                .unwrap();
            for _ in 0..4 {
                random_round(&mut r, &d);
                rng.process_queue();
            }
        }
        let mut p = vec![0u8; 0x800];
        mem.read_slice(&mut p, GuestAddress(0x12000)).unwrap();
        assert_eq!(
            p,
            junk[0x2000..0x2800],
            "protected range written in round {round}"
        );
    }
}
