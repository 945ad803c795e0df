//! The team's service hours (`KEFU_SERVICE_HOURS`): when a handed-off customer can expect
//! a person, and what the bot tells them outside those hours.
//!
//! The format is one or more windows, separated by `,` or `;`, then an optional time zone:
//! `Mon-Fri 09:00-18:00, Sat 10:00-16:00 Asia/Shanghai`. Days are `Mon` … `Sun`, ranges of
//! them (`Mon-Fri`, `Fri-Mon`) or `daily`; a window whose end is not after its start runs
//! past midnight (`22:00-06:00`). Empty (the default) means around the clock. Time zones are
//! fixed offsets: `UTC`, `UTC+8`, `UTC-05:30`, or a zone without daylight saving time
//! (`Asia/Shanghai`, `Asia/Tokyo`, … see [`ZONES`]).

use kefu::domain::Millis;
use kefu::{Error, Result};

/// Zones accepted by name, with their offset from UTC in minutes. Only zones that keep one
/// offset all year, so no time-zone database is needed.
pub const ZONES: &[(&str, i32)] = &[
    ("Asia/Shanghai", 480),
    ("Asia/Chongqing", 480),
    ("Asia/Hong_Kong", 480),
    ("Asia/Macau", 480),
    ("Asia/Taipei", 480),
    ("Asia/Singapore", 480),
    ("Asia/Kuala_Lumpur", 480),
    ("Asia/Manila", 480),
    ("Asia/Tokyo", 540),
    ("Asia/Seoul", 540),
    ("Asia/Bangkok", 420),
    ("Asia/Jakarta", 420),
    ("Asia/Ho_Chi_Minh", 420),
    ("Asia/Kolkata", 330),
    ("Asia/Dubai", 240),
    ("Etc/UTC", 0),
];

const DAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAYS_ZH: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

/// When people answer. [`Default`] is around the clock.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceHours {
    /// Empty: always open.
    windows: Vec<Window>,
    /// Minutes east of UTC.
    offset: i32,
    /// The zone as configured, for the customer ("Asia/Shanghai", "UTC+8").
    zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    /// Monday first.
    days: [bool; 7],
    /// Minutes after midnight.
    start: u32,
    end: u32,
}

impl ServiceHours {
    /// Parses the `KEFU_SERVICE_HOURS` format (see the module docs).
    pub fn parse(spec: &str) -> Result<Self> {
        let invalid = |why: String| Error::Invalid(format!("service hours {spec:?}: {why}"));
        let trimmed = spec.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("always") || trimmed == "24/7" {
            return Ok(Self::default());
        }
        let mut tokens: Vec<&str> = trimmed.split_whitespace().collect();
        let (offset, zone) = match tokens.last().map(|t| zone_offset(t)) {
            Some(Some(offset)) => {
                let zone = tokens.pop().unwrap_or_default().to_owned();
                (offset, zone)
            }
            _ => (0, "UTC".to_owned()),
        };
        let rest = tokens.join(" ");
        let mut windows = Vec::new();
        for segment in rest.split([',', ';']).map(str::trim) {
            let parts: Vec<&str> = segment.split_whitespace().collect();
            let Some((range, days)) = parts.split_last() else {
                return Err(invalid("an empty window".into()));
            };
            if days.is_empty() {
                return Err(invalid(format!("{segment:?} needs days, e.g. Mon-Fri")));
            }
            let mut window = Window {
                days: [false; 7],
                start: 0,
                end: 0,
            };
            for day in days {
                let (from, to) = day_range(day).ok_or_else(|| {
                    invalid(format!(
                        "{day:?} is not a day (Mon … Sun, a range like Mon-Fri, or daily); time zones with daylight saving time are not supported, use a UTC offset such as UTC+1"
                    ))
                })?;
                let mut d = from;
                loop {
                    window.days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            let (start, end) = range
                .split_once('-')
                .and_then(|(a, b)| Some((clock(a)?, clock(b)?)))
                .ok_or_else(|| {
                    invalid(format!(
                        "{range:?} is not a time range like 09:00-18:00 (a time zone must be UTC, a UTC offset such as UTC+1, or one without daylight saving time such as Asia/Shanghai)"
                    ))
                })?;
            if start == end || start >= 24 * 60 {
                return Err(invalid(format!("{range:?} is an empty window")));
            }
            window.start = start;
            window.end = end;
            windows.push(window);
        }
        Ok(Self {
            windows,
            offset,
            zone,
        })
    }

    /// Whether people answer at `at` (milliseconds since the Unix epoch).
    pub fn is_open(&self, at: Millis) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        let local = at.div_euclid(60_000) + i64::from(self.offset);
        let day_number = local.div_euclid(24 * 60);
        let minute = local.rem_euclid(24 * 60) as u32;
        // 1970-01-01 was a Thursday (index 3, Monday first).
        let today = (day_number + 3).rem_euclid(7) as usize;
        let yesterday = (today + 6) % 7;
        self.windows.iter().any(|w| {
            if w.start < w.end {
                w.days[today] && (w.start..w.end).contains(&minute)
            } else {
                (w.days[today] && minute >= w.start) || (w.days[yesterday] && minute < w.end)
            }
        })
    }

    /// Whether these are the around-the-clock default.
    pub fn always(&self) -> bool {
        self.windows.is_empty()
    }

    /// The hours as the customer reads them: "周一至周五 09:00-18:00（Asia/Shanghai）",
    /// "Mon–Fri 09:00-18:00 (Asia/Shanghai)".
    pub fn describe(&self, zh: bool) -> String {
        if self.windows.is_empty() {
            return if zh { "全天" } else { "around the clock" }.into();
        }
        let names = if zh { &DAYS_ZH } else { &DAYS_EN };
        let windows: Vec<String> = self
            .windows
            .iter()
            .map(|w| {
                format!(
                    "{} {}-{}",
                    describe_days(&w.days, names, zh),
                    hh_mm(w.start),
                    hh_mm(w.end)
                )
            })
            .collect();
        if zh {
            format!("{}（{}）", windows.join("，"), self.zone)
        } else {
            format!("{} ({})", windows.join(", "), self.zone)
        }
    }
}

/// "Mon-Fri", "Sat", "daily" → first and last day, Monday = 0.
fn day_range(token: &str) -> Option<(usize, usize)> {
    if token.eq_ignore_ascii_case("daily") {
        return Some((0, 6));
    }
    let day = |s: &str| {
        DAYS_EN
            .iter()
            .position(|d| s.get(..3).is_some_and(|head| d.eq_ignore_ascii_case(head)))
    };
    match token.split_once('-') {
        Some((a, b)) => Some((day(a)?, day(b)?)),
        None => day(token).map(|d| (d, d)),
    }
}

/// "09:00" → minutes after midnight; "24:00" is the end of the day.
fn clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0)) && s.len() <= 5).then_some(h * 60 + m)
}

/// A zone token's offset in minutes, or `None` if it is not a zone.
fn zone_offset(token: &str) -> Option<i32> {
    if let Some((_, offset)) = ZONES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(token))
    {
        return Some(*offset);
    }
    let upper = token.to_ascii_uppercase();
    let rest = ["UTC", "GMT"]
        .iter()
        .find_map(|p| upper.strip_prefix(p))
        .or_else(|| (upper.starts_with('+') || upper.starts_with('-')).then_some(upper.as_str()))?;
    if rest.is_empty() {
        return Some(0);
    }
    let (sign, digits) = match rest.split_at(1) {
        ("+", d) => (1, d),
        ("-", d) => (-1, d),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None => (digits.parse::<i32>().ok()?, 0),
    };
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}

fn hh_mm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Consecutive days as ranges ("Mon-Fri, Sun" / "周一至周五、周日").
fn describe_days(days: &[bool; 7], names: &[&str; 7], zh: bool) -> String {
    if days.iter().all(|d| *d) {
        return if zh { "每天" } else { "daily" }.into();
    }
    let mut parts = Vec::new();
    let mut d = 0;
    while d < 7 {
        if !days[d] {
            d += 1;
            continue;
        }
        let start = d;
        while d + 1 < 7 && days[d + 1] {
            d += 1;
        }
        parts.push(if start == d {
            names[d].to_owned()
        } else if zh {
            format!("{}至{}", names[start], names[d])
        } else {
            format!("{}-{}", names[start], names[d])
        });
        d += 1;
    }
    parts.join(if zh { "、" } else { ", " })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds at a UTC date and time.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Millis {
        chrono::NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|date| date.and_hms_opt(h, mi, 0))
            .expect("valid date")
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn given_weekday_hours_in_shanghai_when_checked_then_local_time_decides() {
        let hours = ServiceHours::parse("Mon-Fri 09:00-18:00 Asia/Shanghai").expect("parses");
        // 2026-12-04 is a Friday. 01:00 UTC is 09:00 in Shanghai.
        assert!(hours.is_open(utc(2026, 12, 4, 1, 0)));
        assert!(hours.is_open(utc(2026, 12, 4, 9, 59)));
        assert!(!hours.is_open(utc(2026, 12, 4, 10, 0)), "18:00 is closed");
        assert!(!hours.is_open(utc(2026, 12, 4, 0, 59)), "08:59 is closed");
        // Saturday 10:00 in Shanghai.
        assert!(!hours.is_open(utc(2026, 12, 5, 2, 0)));
        // Monday 09:30 in Shanghai is Monday 01:30 UTC.
        assert!(hours.is_open(utc(2026, 12, 7, 1, 30)));
        assert_eq!(hours.describe(false), "Mon-Fri 09:00-18:00 (Asia/Shanghai)");
        assert_eq!(
            hours.describe(true),
            "周一至周五 09:00-18:00（Asia/Shanghai）"
        );
    }

    #[test]
    fn given_several_windows_and_an_overnight_one_when_checked_then_each_counts() {
        let hours =
            ServiceHours::parse("Mon-Fri 09:00-18:00; Sat Sun 22:00-02:00 UTC+8").expect("parses");
        // Sunday 01:00 local (Saturday 17:00 UTC): Saturday's night window.
        assert!(hours.is_open(utc(2026, 12, 5, 17, 0)));
        // Monday 01:00 local: Sunday's night window.
        assert!(hours.is_open(utc(2026, 12, 6, 17, 0)));
        // Tuesday 01:00 local: Monday has no night window.
        assert!(!hours.is_open(utc(2026, 12, 7, 17, 0)));
        assert_eq!(
            hours.describe(false),
            "Mon-Fri 09:00-18:00, Sat-Sun 22:00-02:00 (UTC+8)"
        );
        let utc_default = ServiceHours::parse("daily 00:00-12:00").expect("parses");
        assert!(utc_default.is_open(utc(2026, 12, 4, 11, 59)));
        assert!(!utc_default.is_open(utc(2026, 12, 4, 12, 0)));
    }

    #[test]
    fn given_no_hours_when_checked_then_always_open() {
        for spec in ["", "  ", "always", "24/7"] {
            let hours = ServiceHours::parse(spec).expect("parses");
            assert!(hours.always() && hours.is_open(0) && hours.is_open(utc(2026, 12, 5, 3, 0)));
        }
        assert!(ServiceHours::default().always());
    }

    #[test]
    fn given_malformed_hours_when_parsed_then_a_clear_error() {
        for bad in [
            "09:00-18:00",
            "Mon-Fri",
            "Mon-Fri 9-18",
            "Mon-Fri 09:00-09:00",
            "Mon-Fri 25:00-26:00",
            "Funday 09:00-18:00",
            "Mon-Fri 09:00-18:00 Europe/Berlin",
            "Mon-Fri 09:00-18:00,",
        ] {
            match ServiceHours::parse(bad) {
                Err(Error::Invalid(why)) => assert!(why.contains("service hours"), "{why}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
