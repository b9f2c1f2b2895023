//! A syntax checker for Go's `regexp` package, as Traefik compiles
//! matcher regexps (`regexp.Compile`, i.e. `syntax.Perl` flags). It walks
//! the pattern the way `regexp/syntax/parse.go` does and reports the same
//! errors, but only tracks what those errors depend on: for each open
//! group, whether a repetition operator has something to apply to, and
//! how much nested counted repetitions multiply.

/// Largest count in `x{n,m}`, and largest product of nested counts.
const MAX_REPEAT: u32 = 1000;
/// Stricter stand-in for Go's parse-tree height limit of 1000.
const MAX_GROUP_DEPTH: usize = 100;
/// Bound on pattern length × largest repetition product, a conservative
/// stand-in for Go's "expression too large" (about 3.3M instructions).
const MAX_EXPANDED: u64 = 200_000;

/// Unicode general categories, as in Go's `unicode.Categories`.
const CATEGORIES: &[&str] = &[
    "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl", "No", "P",
    "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
];

/// Unicode 15 scripts, as in Go's `unicode.Scripts` since Go 1.21 (every Traefik v3 is built
/// with Go 1.22 or later). Only those passing [`is_canonical`] are usable.
#[rustfmt::skip]
const SCRIPTS: &[&str] = &[
    "Adlam", "Ahom", "Anatolian_Hieroglyphs", "Arabic", "Armenian", "Avestan", "Balinese",
    "Bamum", "Bassa_Vah", "Batak", "Bengali", "Bhaiksuki", "Bopomofo", "Brahmi", "Braille",
    "Buginese", "Buhid", "Canadian_Aboriginal", "Carian", "Caucasian_Albanian", "Chakma",
    "Cham", "Cherokee", "Chorasmian", "Common", "Coptic", "Cuneiform", "Cypriot", "Cypro_Minoan",
    "Cyrillic", "Deseret", "Devanagari", "Dives_Akuru", "Dogra", "Duployan", "Egyptian_Hieroglyphs",
    "Elbasan", "Elymaic", "Ethiopic", "Georgian", "Glagolitic", "Gothic", "Grantha", "Greek",
    "Gujarati", "Gunjala_Gondi", "Gurmukhi", "Han", "Hangul", "Hanifi_Rohingya", "Hanunoo",
    "Hatran", "Hebrew", "Hiragana", "Imperial_Aramaic", "Inherited", "Inscriptional_Pahlavi",
    "Inscriptional_Parthian", "Javanese", "Kaithi", "Kannada", "Katakana", "Kawi", "Kayah_Li",
    "Kharoshthi", "Khitan_Small_Script", "Khmer", "Khojki", "Khudawadi", "Lao", "Latin",
    "Lepcha", "Limbu", "Linear_A", "Linear_B", "Lisu", "Lycian", "Lydian", "Mahajani",
    "Makasar", "Malayalam", "Mandaic", "Manichaean", "Marchen", "Masaram_Gondi", "Medefaidrin",
    "Meetei_Mayek", "Mende_Kikakui", "Meroitic_Cursive", "Meroitic_Hieroglyphs", "Miao", "Modi",
    "Mongolian", "Mro", "Multani", "Myanmar", "Nabataean", "Nag_Mundari", "Nandinagari",
    "New_Tai_Lue", "Newa", "Nko", "Nushu", "Nyiakeng_Puachue_Hmong", "Ogham", "Ol_Chiki",
    "Old_Hungarian", "Old_Italic", "Old_North_Arabian", "Old_Permic", "Old_Persian",
    "Old_Sogdian", "Old_South_Arabian", "Old_Turkic", "Old_Uyghur", "Oriya", "Osage", "Osmanya",
    "Pahawh_Hmong", "Palmyrene", "Pau_Cin_Hau", "Phags_Pa", "Phoenician", "Psalter_Pahlavi",
    "Rejang", "Runic", "Samaritan", "Saurashtra", "Sharada", "Shavian", "Siddham", "SignWriting",
    "Sinhala", "Sogdian", "Sora_Sompeng", "Soyombo", "Sundanese", "Syloti_Nagri", "Syriac",
    "Tagalog", "Tagbanwa", "Tai_Le", "Tai_Tham", "Tai_Viet", "Takri", "Tamil", "Tangsa", "Tangut",
    "Telugu", "Thaana", "Thai", "Tibetan", "Tifinagh", "Tirhuta", "Toto", "Ugaritic", "Vai",
    "Vithkuqi", "Wancho", "Warang_Citi", "Yezidi", "Yi", "Zanabazar_Square",
];

/// Whether Go finds the `\p{..}` name `name` under every version that builds Traefik v3.
///
/// Go 1.25 changed the lookup (`canonicalName` in `regexp/syntax/parse.go`): it upper-cases
/// the first letter, lower-cases the others and drops `_`, `-` and spaces, then looks the
/// result up in tables whose keys are spelled `Old_Italic` and `SignWriting`. So those scripts
/// are unknown to every Traefik built with Go 1.25 or later (all of v3.7), while older builds
/// know the exact names only. A name works everywhere when Go's rewriting leaves it unchanged.
fn is_canonical(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_lowercase())
}

/// POSIX class names usable inside brackets, `[[:alpha:]]` or `[[:^alpha:]]`.
const POSIX: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "word",
    "xdigit",
];

pub(super) fn check(pattern: &str) -> Result<(), String> {
    Checker {
        s: pattern.chars().collect(),
        i: 0,
        groups: vec![Group::default()],
        last_repeat: None,
        max_weight: 1,
    }
    .run()
}

/// What the checker knows about one open group (the outermost "group"
/// is the whole pattern).
#[derive(Default)]
struct Group {
    /// The repetition weight of the item a following `*` or `{n}` would
    /// apply to; `None` at the start of the group or right after `|`,
    /// where Go reports "missing argument to repetition operator".
    last: Option<u32>,
    /// Largest weight of any item in the group so far.
    max_weight: u32,
}

struct Checker {
    s: Vec<char>,
    i: usize,
    groups: Vec<Group>,
    /// Where the previous item started, if it was a repetition operator:
    /// Go refuses to stack them (`a**`).
    last_repeat: Option<usize>,
    max_weight: u32,
}

impl Checker {
    fn run(mut self) -> Result<(), String> {
        while let Some(&c) = self.s.get(self.i) {
            let start = self.i;
            let mut repeat = None;
            match c {
                '(' => self.open_group()?,
                '|' => {
                    self.i += 1;
                    self.top().last = None;
                }
                ')' => self.close_group()?,
                '[' => {
                    self.class()?;
                    self.item(1);
                }
                '*' | '+' | '?' => {
                    self.i += 1;
                    self.repeat(start, None)?;
                    repeat = Some(start);
                }
                '{' => match self.counts()? {
                    Some(counts) => {
                        self.repeat(start, Some(counts))?;
                        repeat = Some(start);
                    }
                    None => {
                        // Not a well-formed `{n,m}`: Go takes `{` literally.
                        self.i += 1;
                        self.item(1);
                    }
                },
                '\\' => self.backslash()?,
                _ => {
                    // Literals, `.`, `^` and `$` are all single items.
                    self.i += 1;
                    self.item(1);
                }
            }
            self.last_repeat = repeat;
        }
        if self.groups.len() != 1 {
            return Err("missing closing )".to_owned());
        }
        if self.s.len() as u64 * u64::from(self.max_weight) > MAX_EXPANDED {
            return Err("regexp is too large once its repetitions are expanded".to_owned());
        }
        Ok(())
    }

    fn top(&mut self) -> &mut Group {
        if self.groups.is_empty() {
            self.groups.push(Group::default());
        }
        let last = self.groups.len() - 1;
        &mut self.groups[last]
    }

    fn item(&mut self, weight: u32) {
        let group = self.top();
        group.last = Some(weight);
        group.max_weight = group.max_weight.max(weight);
        self.max_weight = self.max_weight.max(weight);
    }

    fn snippet(&self, from: usize, to: usize) -> String {
        let to = to.min(self.s.len());
        self.s.get(from..to).unwrap_or_default().iter().collect()
    }

    fn open_group(&mut self) -> Result<(), String> {
        let start = self.i;
        if self.s.get(start + 1) != Some(&'?') {
            self.i += 1;
            return self.push_group();
        }
        let rest = self.s.len() - start;
        let starts_with_p = rest > 4 && self.s[start + 2] == 'P' && self.s[start + 3] == '<';
        let starts_with_name = rest > 3 && self.s[start + 2] == '<';
        if starts_with_p || starts_with_name {
            // (?P<name>...) or (?<name>...). The latter needs Go 1.22,
            // which every Traefik v3 release is built with.
            let name_start = start + if starts_with_p { 4 } else { 3 };
            let Some(end) = (start..self.s.len()).find(|&k| self.s[k] == '>') else {
                return Err(format!("invalid named capture `{}`", self.snippet(start, self.s.len())));
            };
            let name = self.s.get(name_start..end).unwrap_or_default();
            if name.is_empty() || !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_') {
                return Err(format!("invalid named capture `{}`", self.snippet(start, end + 1)));
            }
            self.i = end + 1;
            return self.push_group();
        }
        // Flags, possibly opening a non-capturing group: (?i) (?i-s:...) (?:...)
        let mut k = start + 2;
        let mut negated = false;
        let mut saw_flag = false;
        while let Some(&c) = self.s.get(k) {
            k += 1;
            match c {
                'i' | 'm' | 's' | 'U' => saw_flag = true,
                '-' if !negated => {
                    negated = true;
                    saw_flag = false;
                }
                ':' | ')' if !negated || saw_flag => {
                    self.i = k;
                    return if c == ':' { self.push_group() } else { Ok(()) };
                }
                _ => break,
            }
        }
        Err(format!(
            "invalid or unsupported Perl syntax `{}`",
            self.snippet(start, k)
        ))
    }

    fn push_group(&mut self) -> Result<(), String> {
        if self.groups.len() > MAX_GROUP_DEPTH {
            return Err(format!("groups are nested more than {MAX_GROUP_DEPTH} deep"));
        }
        self.groups.push(Group {
            last: None,
            max_weight: 1,
        });
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), String> {
        self.i += 1;
        if self.groups.len() <= 1 {
            return Err("unexpected )".to_owned());
        }
        let weight = self.groups.pop().map_or(1, |g| g.max_weight);
        self.item(weight);
        Ok(())
    }

    /// Applies a repetition operator that started at `start`; `self.i` is
    /// just past it. `counts` is `(min, max)` for `{..}`, `max == -1`
    /// meaning unbounded.
    fn repeat(&mut self, start: usize, counts: Option<(i64, i64)>) -> Result<(), String> {
        if self.s.get(self.i) == Some(&'?') {
            self.i += 1; // non-greedy
        }
        if let Some(previous) = self.last_repeat {
            return Err(format!(
                "invalid nested repetition operator `{}`",
                self.snippet(previous, self.i)
            ));
        }
        let Some(inner) = self.top().last else {
            return Err(format!(
                "missing argument to repetition operator `{}`",
                self.snippet(start, self.i)
            ));
        };
        // Go's repeatIsValid: along any path, the counts of nested
        // `{n,m}` (m, or n when unbounded) may not multiply past 1000;
        // `{0}` ends the path.
        let weight = match counts {
            None => inner,
            Some((_, 0)) => 1,
            Some((min, max)) => {
                let m = u32::try_from(if max < 0 { min } else { max }).unwrap_or(u32::MAX);
                if m == 0 { inner } else { m.saturating_mul(inner) }
            }
        };
        if weight > MAX_REPEAT {
            return Err(format!(
                "invalid repeat count `{}`: nested repetitions multiply past {MAX_REPEAT}",
                self.snippet(start, self.i)
            ));
        }
        self.item(weight);
        Ok(())
    }

    /// Parses `{n}`, `{n,}` or `{n,m}` at `self.i`. `Ok(None)` when the
    /// text is not of that form (Go then treats `{` as a literal).
    fn counts(&mut self) -> Result<Option<(i64, i64)>, String> {
        let start = self.i;
        let Some((mut min, mut k)) = self.int(start + 1) else {
            return Ok(None);
        };
        let max = match self.s.get(k) {
            Some(',') => {
                k += 1;
                match self.s.get(k) {
                    Some('}') => -1,
                    _ => {
                        let Some((max, next)) = self.int(k) else {
                            return Ok(None);
                        };
                        k = next;
                        if max < 0 {
                            min = -1; // too big, as Go's parseRepeat reports it
                        }
                        max
                    }
                }
            }
            Some(_) => min,
            None => return Ok(None),
        };
        if self.s.get(k) != Some(&'}') {
            return Ok(None);
        }
        k += 1;
        let limit = i64::from(MAX_REPEAT);
        if min < 0 || min > limit || max > limit || (max >= 0 && min > max) {
            return Err(format!("invalid repeat count `{}`", self.snippet(start, k)));
        }
        self.i = k;
        Ok(Some((min, max)))
    }

    /// Go's parseInt: decimal, no leading zeros, -1 when too large.
    fn int(&self, from: usize) -> Option<(i64, usize)> {
        let first = *self.s.get(from)?;
        if !first.is_ascii_digit() {
            return None;
        }
        if first == '0' && self.s.get(from + 1).is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut k = from;
        let mut n: i64 = 0;
        while let Some(d) = self.s.get(k).and_then(|c| c.to_digit(10)) {
            if n >= 0 {
                n = if n >= 100_000_000 { -1 } else { n * 10 + i64::from(d) };
            }
            k += 1;
        }
        Some((n, k))
    }

    fn backslash(&mut self) -> Result<(), String> {
        let start = self.i;
        match self.s.get(start + 1) {
            Some('A' | 'b' | 'B' | 'z' | 'd' | 'D' | 's' | 'S' | 'w' | 'W') => {
                self.i += 2;
                self.item(1);
            }
            Some('C') => return Err("invalid escape sequence `\\C`".to_owned()),
            Some('Q') => {
                // \Q...\E: everything up to \E (or the end) is literal.
                let body = start + 2;
                let end = (body..self.s.len()).find(|&k| self.s[k] == '\\' && self.s.get(k + 1) == Some(&'E'));
                self.i = end.map_or(self.s.len(), |k| k + 2);
                if end.unwrap_or(self.s.len()) > body {
                    self.item(1);
                }
            }
            Some('p' | 'P') => {
                self.unicode_class()?;
                self.item(1);
            }
            _ => {
                self.escape()?;
                self.item(1);
            }
        }
        Ok(())
    }

    /// `\pL`, `\p{Greek}`, `\P{^Lu}` at `self.i`.
    fn unicode_class(&mut self) -> Result<(), String> {
        let start = self.i;
        let (name, end): (String, usize) = match self.s.get(start + 2) {
            Some('{') => {
                let Some(close) = (start..self.s.len()).find(|&k| self.s[k] == '}') else {
                    return Err(format!(
                        "invalid character class range `{}`",
                        self.snippet(start, self.s.len())
                    ));
                };
                (self.snippet(start + 3, close), close + 1)
            }
            Some(&c) => (c.to_string(), start + 3),
            None => (String::new(), start + 2),
        };
        self.i = end;
        let bare = name.strip_prefix('^').unwrap_or(&name);
        let known = bare == "Any" || CATEGORIES.contains(&bare) || SCRIPTS.contains(&bare);
        if known && is_canonical(bare) {
            Ok(())
        } else if known {
            Err(format!(
                "unsupported Unicode class `{}`: Traefik built with Go 1.25 or later (every v3.7) cannot find \
                 scripts whose names contain `_` or a second capital letter",
                self.snippet(start, end)
            ))
        } else {
            Err(format!(
                "unknown or unsupported Unicode class `{}`",
                self.snippet(start, end)
            ))
        }
    }

    /// An escape outside the Perl/Unicode classes (Go's parseEscape);
    /// returns the code point it stands for.
    fn escape(&mut self) -> Result<u32, String> {
        let start = self.i;
        let Some(&c) = self.s.get(start + 1) else {
            return Err("trailing backslash at end of expression".to_owned());
        };
        let mut k = start + 2;
        let invalid = |this: &Self, end: usize| Err(format!("invalid escape sequence `{}`", this.snippet(start, end)));
        let is_octal = |c: Option<&char>| c.is_some_and(|c| ('0'..='7').contains(c));
        let value = match c {
            // A lone \1-\7 would be a backreference, which RE2 lacks.
            '1'..='7' if !is_octal(self.s.get(k)) => return invalid(self, k),
            '0'..='7' => {
                let mut r = c.to_digit(8).unwrap_or(0);
                for _ in 1..3 {
                    match self.s.get(k).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            r = r * 8 + d;
                            k += 1;
                        }
                        None => break,
                    }
                }
                r
            }
            'x' => match self.s.get(k) {
                None => return invalid(self, k),
                Some('{') => {
                    k += 1;
                    let mut r: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let Some(&d) = self.s.get(k) else {
                            return invalid(self, k);
                        };
                        k += 1;
                        if d == '}' {
                            break;
                        }
                        let Some(v) = d.to_digit(16) else {
                            return invalid(self, k);
                        };
                        r = r * 16 + v;
                        if r > 0x10FFFF {
                            return invalid(self, k);
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return invalid(self, k);
                    }
                    r
                }
                Some(&h) => {
                    let high = h.to_digit(16);
                    let low = self.s.get(k + 1).and_then(|d| d.to_digit(16));
                    k += 2;
                    match (high, low) {
                        (Some(high), Some(low)) => high * 16 + low,
                        _ => return invalid(self, k),
                    }
                }
            },
            'a' => 0x07,
            'f' => 0x0c,
            'n' => 0x0a,
            'r' => 0x0d,
            't' => 0x09,
            'v' => 0x0b,
            // Escaped punctuation stands for itself; escaped letters,
            // digits and non-ASCII are errors unless listed above.
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => u32::from(c),
            _ => return invalid(self, k),
        };
        self.i = k;
        Ok(value)
    }

    /// A bracketed class at `self.i`, Go's parseClass.
    fn class(&mut self) -> Result<(), String> {
        let start = self.i;
        let missing = |this: &Self| Err(format!("missing closing ] in `{}`", this.snippet(start, this.s.len())));
        let mut k = start + 1;
        if self.s.get(k) == Some(&'^') {
            k += 1;
        }
        let mut first = true; // `]` right after `[` or `[^` is a literal
        loop {
            let Some(&c) = self.s.get(k) else {
                return missing(self);
            };
            if c == ']' && !first {
                k += 1;
                break;
            }
            first = false;
            let next = self.s.get(k + 1).copied();
            // [:alpha:]. Like Go, look for ":]" anywhere further on.
            if c == '[' && next == Some(':') && k + 2 < self.s.len() {
                let close = (k + 2..self.s.len().saturating_sub(1)).find(|&j| self.s[j] == ':' && self.s[j + 1] == ']');
                if let Some(close) = close {
                    let name = self.snippet(k + 2, close);
                    let bare = name.strip_prefix('^').unwrap_or(&name);
                    if !POSIX.contains(&bare) {
                        return Err(format!(
                            "invalid character class range `{}`",
                            self.snippet(k, close + 2)
                        ));
                    }
                    k = close + 2;
                    continue;
                }
            }
            if c == '\\' && matches!(next, Some('p' | 'P')) {
                self.i = k;
                self.unicode_class()?;
                k = self.i;
                continue;
            }
            if c == '\\' && matches!(next, Some('d' | 'D' | 's' | 'S' | 'w' | 'W')) {
                k += 2;
                continue;
            }
            let range_start = k;
            let Some(low) = self.class_char(&mut k)? else {
                return missing(self);
            };
            if self.s.get(k) == Some(&'-') && self.s.get(k + 1).is_some_and(|c| *c != ']') {
                k += 1;
                let Some(high) = self.class_char(&mut k)? else {
                    return missing(self);
                };
                if high < low {
                    return Err(format!(
                        "invalid character class range `{}`",
                        self.snippet(range_start, k)
                    ));
                }
            }
        }
        self.i = k;
        Ok(())
    }

    /// One possibly escaped character inside brackets; `None` at the end
    /// of the pattern.
    fn class_char(&mut self, k: &mut usize) -> Result<Option<u32>, String> {
        match self.s.get(*k) {
            None => Ok(None),
            Some('\\') => {
                self.i = *k;
                let value = self.escape()?;
                *k = self.i;
                Ok(Some(value))
            }
            Some(&c) => {
                *k += 1;
                Ok(Some(u32::from(c)))
            }
        }
    }
}
