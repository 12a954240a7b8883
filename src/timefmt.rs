//! Times for people: Unix seconds <-> `YYYY-MM-DD HH:MM:SSZ` (UTC), and the
//! forms `--since` accepts. Kept here rather than pulling in a date crate:
//! two conversions and a parser are all the CLI needs.

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-28 09:31:30Z`
pub fn format_utc(unix_seconds: u64) -> String {
    let secs = unix_seconds as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rest = secs.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Parses `--since`: Unix seconds, `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS][Z]` (UTC),
/// or a span back from `now` such as `30m`, `12h`, `7d`.
pub fn parse_since(text: &str, now: u64) -> Option<u64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(secs);
    }
    if let Some(unit) = text.chars().last().filter(|c| "smhd".contains(*c)) {
        if let Ok(n) = text[..text.len() - 1].parse::<u64>() {
            let scale = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            return Some(now.saturating_sub(n.saturating_mul(scale)));
        }
    }
    let text = text.trim_end_matches('Z');
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok().filter(|m| (1..=12).contains(m))?;
    let day: u32 = parts.next()?.parse().ok().filter(|d| (1..=31).contains(d))?;
    if parts.next().is_some() {
        return None;
    }
    let mut seconds = 0i64;
    if let Some(time) = time {
        let fields: Vec<&str> = time.split(':').collect();
        if !(2..=3).contains(&fields.len()) {
            return None;
        }
        let h: i64 = fields[0].parse().ok().filter(|h| (0..24).contains(h))?;
        let m: i64 = fields[1].parse().ok().filter(|m| (0..60).contains(m))?;
        let s: i64 = fields.get(2).map_or(Some(0), |s| s.parse().ok().filter(|s| (0..61).contains(s)))?;
        seconds = h * 3600 + m * 60 + s;
    }
    let total = days_from_civil(year, month, day) * 86_400 + seconds;
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(format_utc(1_234_567_890), "2009-02-13 23:31:30Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(parse_since("2009-02-13T23:31:30Z", 0), Some(1_234_567_890));
        assert_eq!(parse_since("2009-02-13 23:31:30", 0), Some(1_234_567_890));
        assert_eq!(parse_since("2000-02-29", 0), Some(951_782_400));
        assert_eq!(parse_since("1234", 0), Some(1234));
        assert_eq!(parse_since("2h", 10_000), Some(2_800));
        assert_eq!(parse_since("7d", 1_000_000), Some(395_200));
        assert_eq!(parse_since("2009-13-01", 0), None);
        assert_eq!(parse_since("yesterday", 0), None);
    }
}
