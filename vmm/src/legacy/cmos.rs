//! A minimal MC146818 CMOS RTC: index port 0x70, data port 0x71. It reports
//! the host's UTC time in BCD and never sets "update in progress", which is
//! all Linux reads at boot; without it the probe stalls for seconds.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::bus::BusDevice;

pub const CMOS_RANGE: u64 = 2;

const REG_SECONDS: u8 = 0x00;
const REG_MINUTES: u8 = 0x02;
const REG_HOURS: u8 = 0x04;
const REG_WEEKDAY: u8 = 0x06;
const REG_DAY: u8 = 0x07;
const REG_MONTH: u8 = 0x08;
const REG_YEAR: u8 = 0x09;
const REG_STATUS_A: u8 = 0x0a;
const REG_STATUS_B: u8 = 0x0b;
const REG_STATUS_D: u8 = 0x0d;
const REG_CENTURY: u8 = 0x32;

/// 32.768 kHz time base, 1024 Hz periodic rate, UIP clear.
const STATUS_A: u8 = 0x26;
/// 24-hour mode, BCD.
const STATUS_B: u8 = 0x02;
/// Valid RAM and time.
const STATUS_D: u8 = 0x80;

pub struct Cmos {
    index: u8,
    ram: [u8; 128],
}

impl Default for Cmos {
    fn default() -> Self {
        Cmos {
            index: 0,
            ram: [0; 128],
        }
    }
}

fn bcd(v: u64) -> u8 {
    (((v / 10) << 4) | (v % 10)) as u8
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Cmos {
    fn time_register(&self, reg: u8, unix: u64) -> u8 {
        let days = (unix / 86_400) as i64;
        let secs = unix % 86_400;
        let (year, month, day) = civil_from_days(days);
        let year = year.max(0) as u64;
        match reg {
            REG_SECONDS => bcd(secs % 60),
            REG_MINUTES => bcd(secs / 60 % 60),
            REG_HOURS => bcd(secs / 3600),
            // 1970-01-01 was a Thursday; CMOS counts Sunday as 1.
            REG_WEEKDAY => bcd(((days + 4).rem_euclid(7) + 1) as u64),
            REG_DAY => bcd(day),
            REG_MONTH => bcd(month),
            REG_YEAR => bcd(year % 100),
            REG_CENTURY => bcd(year / 100),
            REG_STATUS_A => STATUS_A,
            REG_STATUS_B => STATUS_B,
            REG_STATUS_D => STATUS_D,
            _ => self.ram[usize::from(reg & 0x7f)],
        }
    }
}

impl BusDevice for Cmos {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let value = if offset == 1 {
            let unix = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            self.time_register(self.index, unix)
        } else {
            0xff
        };
        data.fill(value);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            // Bit 7 of the index port masks NMIs; only the index matters here.
            0 => self.index = value & 0x7f,
            1 => self.ram[usize::from(self.index)] = value,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_known_date_in_bcd() {
        let cmos = Cmos::default();
        // 2026-11-25 05:43:59 UTC, a Wednesday.
        let t = 1_795_585_439;
        assert_eq!(cmos.time_register(REG_YEAR, t), 0x26);
        assert_eq!(cmos.time_register(REG_CENTURY, t), 0x20);
        assert_eq!(cmos.time_register(REG_MONTH, t), 0x11);
        assert_eq!(cmos.time_register(REG_DAY, t), 0x25);
        assert_eq!(cmos.time_register(REG_HOURS, t), 0x05);
        assert_eq!(cmos.time_register(REG_MINUTES, t), 0x43);
        assert_eq!(cmos.time_register(REG_SECONDS, t), 0x59);
        assert_eq!(cmos.time_register(REG_WEEKDAY, t), 0x04);
        assert_eq!(cmos.time_register(REG_STATUS_A, t) & 0x80, 0);
    }

    #[test]
    fn index_port_selects_nvram() {
        let mut cmos = Cmos::default();
        cmos.write(0, &[0x80 | 0x40]);
        cmos.write(1, &[0xab]);
        let mut b = [0u8];
        cmos.read(1, &mut b);
        assert_eq!(b[0], 0xab);
    }
}
