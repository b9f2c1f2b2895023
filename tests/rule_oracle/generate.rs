//! Router rules for the oracle test, valid and broken, across Traefik's rule grammar.
//!
//! Two sources:
//! - [`catalogue`]: fixed lists that walk one dimension exhaustively (every matcher spelling,
//!   every `\p{..}` name Go might know, every escape in a regexp and in a Go string, IP and
//!   CIDR forms, the limits pointsman sets itself). No randomness: the same rules every run.
//! - [`random`]: rules from a seeded generator, mostly well-formed expressions with arguments
//!   that are sometimes wrong, half of them then broken by a small mutation (a stray operator,
//!   a lost parenthesis, a quote of the wrong kind, a comment).
//!
//! Nothing here decides what is valid: Traefik does, in `tests/rule_oracle.rs`.

use fastrand::Rng;

/// Traefik's HTTP matchers with a typical valid argument list each.
const MATCHERS: &[(&str, &[&str])] = &[
    ("Host", &["a.com"]),
    ("HostRegexp", &["^a\\.com$"]),
    ("Path", &["/a"]),
    ("PathPrefix", &["/api"]),
    ("PathRegexp", &["^/v[0-9]+/"]),
    ("Method", &["GET"]),
    ("Header", &["X-Env", "blue"]),
    ("HeaderRegexp", &["Cookie", "(^|;\\s*)x=y(;|$)"]),
    ("Query", &["mode", "dark"]),
    ("QueryRegexp", &["mode", "^d"]),
    ("ClientIP", &["10.0.0.0/8"]),
];

/// Unicode general categories and scripts as Go's `unicode` tables name them (Unicode 15),
/// plus the scripts of Unicode 16 and 17 and names that only Go 1.25's loose matching knows.
#[rustfmt::skip]
const UNICODE_NAMES: &[&str] = &[
    "Any", "C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd", "Nl",
    "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs",
    "Adlam", "Ahom", "Anatolian_Hieroglyphs", "Arabic", "Armenian", "Avestan", "Balinese", "Bamum", "Bassa_Vah",
    "Batak", "Bengali", "Bhaiksuki", "Bopomofo", "Brahmi", "Braille", "Buginese", "Buhid", "Canadian_Aboriginal",
    "Carian", "Caucasian_Albanian", "Chakma", "Cham", "Cherokee", "Chorasmian", "Common", "Coptic", "Cuneiform",
    "Cypriot", "Cypro_Minoan", "Cyrillic", "Deseret", "Devanagari", "Dives_Akuru", "Dogra", "Duployan",
    "Egyptian_Hieroglyphs", "Elbasan", "Elymaic", "Ethiopic", "Georgian", "Glagolitic", "Gothic", "Grantha",
    "Greek", "Gujarati", "Gunjala_Gondi", "Gurmukhi", "Han", "Hangul", "Hanifi_Rohingya", "Hanunoo", "Hatran",
    "Hebrew", "Hiragana", "Imperial_Aramaic", "Inherited", "Inscriptional_Pahlavi", "Inscriptional_Parthian",
    "Javanese", "Kaithi", "Kannada", "Katakana", "Kawi", "Kayah_Li", "Kharoshthi", "Khitan_Small_Script", "Khmer",
    "Khojki", "Khudawadi", "Lao", "Latin", "Lepcha", "Limbu", "Linear_A", "Linear_B", "Lisu", "Lycian", "Lydian",
    "Mahajani", "Makasar", "Malayalam", "Mandaic", "Manichaean", "Marchen", "Masaram_Gondi", "Medefaidrin",
    "Meetei_Mayek", "Mende_Kikakui", "Meroitic_Cursive", "Meroitic_Hieroglyphs", "Miao", "Modi", "Mongolian", "Mro",
    "Multani", "Myanmar", "Nabataean", "Nag_Mundari", "Nandinagari", "New_Tai_Lue", "Newa", "Nko", "Nushu",
    "Nyiakeng_Puachue_Hmong", "Ogham", "Ol_Chiki", "Old_Hungarian", "Old_Italic", "Old_North_Arabian", "Old_Permic",
    "Old_Persian", "Old_Sogdian", "Old_South_Arabian", "Old_Turkic", "Old_Uyghur", "Oriya", "Osage", "Osmanya",
    "Pahawh_Hmong", "Palmyrene", "Pau_Cin_Hau", "Phags_Pa", "Phoenician", "Psalter_Pahlavi", "Rejang", "Runic",
    "Samaritan", "Saurashtra", "Sharada", "Shavian", "Siddham", "SignWriting", "Sinhala", "Sogdian", "Sora_Sompeng",
    "Soyombo", "Sundanese", "Syloti_Nagri", "Syriac", "Tagalog", "Tagbanwa", "Tai_Le", "Tai_Tham", "Tai_Viet",
    "Takri", "Tamil", "Tangsa", "Tangut", "Telugu", "Thaana", "Thai", "Tibetan", "Tifinagh", "Tirhuta", "Toto",
    "Ugaritic", "Vai", "Vithkuqi", "Wancho", "Warang_Citi", "Yezidi", "Yi", "Zanabazar_Square", "Garay",
    "Gurung_Khema", "Kirat_Rai", "Ol_Onal", "Sunuwar", "Todhri", "Tulu_Tigalari", "Beria_Erfe", "Chisoi", "Sidetic",
    "Tai_Yo", "Tolong_Siki", "Letter", "Lowercase_Letter", "lowercase letter", "greek", "GREEK", "old_italic",
    "OldItalic", "Old Italic", "Old-Italic", "signwriting", "SIGNWRITING", "any", "ASCII", "ascii", "Assigned",
    "Cn", "LC", "lc", "L&", "Lu_", "Klingon", "Latn", "Script=Latin", "IsGreek", "InGreek", "Greek ", "", "^",
    "^Greek", "^Lu", "^greek",
];

/// POSIX class names Go knows (`[[:alpha:]]`), and near misses.
#[rustfmt::skip]
const POSIX_NAMES: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper",
    "word", "xdigit", "^alpha", "^word", "Alpha", "ALPHA", "foo", "", "^", "alpha ", "letter",
];

/// IP addresses and CIDR blocks for `ClientIP`, as Go's `net.ParseIP` and `net.ParseCIDR`
/// might see them.
#[rustfmt::skip]
const CLIENT_IPS: &[&str] = &[
    "10.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "255.255.255.255", "::1", "::", "::/0", "2001:db8::/32", "2001:DB8::1",
    "FE80::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4",
    "::ffff:1.2.3.4", "::ffff:1.2.3.4/120", "::ffff:1.2.3.4/24", "0001:0002::", "1.2.3.4/032",
    "1.2.3.4/00000000008", "1.2.3.4/0", "1.2.3.4/33", "::1/128", "::1/129", "::1/0128", "10.0.0.300", "10.0.0.0/33",
    "localhost", "fe80::1%eth0", "fe80::1%eth0/64", "010.0.0.1", "1.2.3.04", "1.2.3", "1.2.3.4.5", "1.2.3.4/",
    "1.2.3.4/ 8", "1.2.3.4/+8", "1.2.3.4/-1", "1.2.3.4/8/8", "1.2.3.4/0x8", "1.2.3.4/99999999999",
    "1:2:3:4:5:6:7:8:9", "1:2:3:4::5:6:7:8", "12345::", ":::1", "1::2::3", ":1::", "1:2:3:4:5:6:7:",
    "::ffff:01.2.3.4", "::1.2.3", "1.2.3.4::", "[::1]", "1.2.3.4:80", "0x7f.0.0.1", " 1.2.3.4", "1.2.3.4 ",
    "1.2.3.4\t", "１.2.3.4", "/8", "*",
];

/// Names Traefik does not register for HTTP routers.
#[rustfmt::skip]
const WRONG_MATCHER_NAMES: &[&str] = &[
    "ClientIp", "Clientip", "HostSNI", "HostSNIRegexp", "ALPN", "Headers", "HeadersRegexp", "HostHeader", "Method_",
    "Path.Prefix", "Hóst", "Ηost", "PathPrefixStrip", "Foo", "And", "Not", "true", "nil",
];

/// Bracket syntax around POSIX classes, right and wrong.
#[rustfmt::skip]
const CLASS_SYNTAX: &[&str] = &[
    "[[:alpha:]", "[[:alpha]]", "[[:]]", "[[:a]b:]]", "[x[:digit:]-z]", "[[=a=]]", "[[.a.]]",
];

/// Regexp escapes longer than a backslash and one character (octal, hex, `\Q..\E`), and escapes
/// in classes.
#[rustfmt::skip]
const REGEXP_ESCAPES: &[&str] = &[
    "\\0", "\\00", "\\000", "\\0000", "\\012", "\\08", "\\1", "\\12", "\\123", "\\18", "\\8", "\\x", "\\x4",
    "\\x41", "\\x4G", "\\x{}", "\\x{41}", "\\x{10FFFF}", "\\x{110000}", "\\x{D800}", "\\x{0041", "\\x{g}", "\\é",
    "\\日", "\\Q", "\\Q\\E", "\\Q*\\E*", "\\Qa\\Eb", "\\Qa\\\\Eb", "\\E", "[\\Q]", "[\\b]", "[\\d-z]", "[a-\\d]",
    "[\\x41-\\x5A]", "[\\x5A-\\x41]", "[\\pL-z]", "[a-\\pL]",
];

/// Groups, flags and repetitions, valid and not, as Go parses them.
#[rustfmt::skip]
const REGEXP_SYNTAX: &[&str] = &[
    "(?i)", "(?i:a)", "(?-i)a", "(?i-s:a)", "(?-)a", "(?i-)a", "(?--i)a", "(?i-m-s)a", "(?:)", "(?)", "(?", "(?i",
    "(?P<n>a)", "(?<n>a)", "(?P<n>a)(?P<n>b)", "(?P<>a)", "(?<>a)", "(?P<a-b>a)", "(?P<é>a)", "(?P<n", "(?P<",
    "(?<", "(?P=n)", "(?P>n)", "(?'n'a)", "(?=a)", "(?!a)", "(?<=a)", "(?<!a)", "(?#c)", "(?|a)", "(?>a)", "(?R)",
    "(a)\\1", "a++", "a*+", "a?+", "a**", "a{2}{3}", "a{2}*", "a*?", "a+?", "a??", "a{2}?", "a{2}??", "(?i)*",
    "a(?i)*", "a*(?i)*", "\\Q\\E*", "a\\Q\\E*", "a*\\Q\\E*", "^*", "$+", "\\b*", "(*)", "(|a)", "(a|)", "(a|*)",
    "|*", "a|", "()", "(()", "())", ")", "(", "[]", "[]a]", "[^]a]", "[^]", "[a-]", "[-a]", "[a-b-c]", "[z-a]",
    "[a", "[", "]", "[é-a]", "{", "a{", "a{1", "a{1,", "a{1,2", "a{,2}", "{2}", "a{0}", "a{01}", "a{1000}",
    "a{1001}", "a{1000,}", "a{1001,}", "a{0,1000}", "a{0,1001}", "a{2,1}", "a{99999999999}", "a{1,99999999999}",
    "(a{1000}){1}", "(a{1000}){0,1}", "((a{1000}){1}){2}", "(a{500}){2}", "(a{500}){3}", "(a{10}b{100}){10}",
    "(a{10}|b{101}){10}", "(?:a{31}){32}", "(?:a{32}){32}", "a{0}{2}", "(a{0}){1001}", "(a{0,}){1001}",
    "(a{1,}){1000}", "(a*){1000}", "a{1000}b{1000}",
];

/// Numeric and other escapes in a Go interpreted string, at their limits.
#[rustfmt::skip]
const STRING_ESCAPES: &[&str] = &[
    "\\0", "\\00", "\\000", "\\101", "\\377", "\\400", "\\8", "\\x", "\\x4", "\\x41", "\\xff", "\\xc3\\xa9",
    "\\xc3", "\\u", "\\u00e9", "\\u00E9", "\\u00e", "\\ud800", "\\udfff", "\\ufffd", "\\U0001F600", "\\U0010FFFF",
    "\\U00110000", "\\U0001f60", "\\U0000d800", "\\u0000", "\\x00", "\\n", "\\t",
];

/// Host arguments: Traefik checks only that they are ASCII (or `*`).
#[rustfmt::skip]
const HOSTS: &[&str] = &[
    "a.com", "a.com", "b.example.org", "*", "*.a.com", "A.COM", "127.0.0.1", "a_b.com", "a b", "xn--bcher-kva.de",
    "a.com:8080", "exämple.com", "日本.jp", "a\"b", "a`b", "a\\b", "a.*.com", "a.com.", "[::1]", "é.com",
];

/// Path arguments: Traefik wants them to start with `/`.
#[rustfmt::skip]
const PATHS: &[&str] = &[
    "/", "/", "/api", "/api/v1", "//", "//x", "/a b", "/é", "/%20", "/a?b", "/a\"b", "/a`b", "/a\\b", "api", " /x",
    "*", ".", "é", "\\/a",
];

/// Method arguments: Traefik takes any; pointsman wants an HTTP token.
#[rustfmt::skip]
const METHODS: &[&str] = &[
    "GET", "GET", "post", "M-SEARCH", "PURGE", "*", "GET POST", "GÉT", "a/b", "(x)", "é", "G\"T", "get", "GET,POST",
    "\"", "a\"b",
];

/// Header and query values and keys: anything but empty.
#[rustfmt::skip]
const VALUES: &[&str] = &[
    "blue", "a b", "1", "é", "日本", "x=y;z", "a\"b", "a`b", "a\\b", "\u{1F600}", "a\tb", "a\nb", "\u{0}", "a'b", "}",
    "{", "%",
];

/// Repetition operators Go accepts after an atom.
#[rustfmt::skip]
const REPEATS: &[&str] = &[
    "*", "+", "?", "*?", "+?", "??", "{2}", "{2,}", "{2,5}", "{0}", "{0,1}", "{1000}", "{3}?",
];

/// Repetitions Go refuses, or reads as literal braces.
#[rustfmt::skip]
const BROKEN_REPEATS: &[&str] = &[
    "**", "*+", "++", "{2}{3}", "{,5}", "{5,2}", "{1001}", "{01}", "{", "{2", "{2,", "{}", "{x}",
];

/// Literal characters in a regexp.
#[rustfmt::skip]
const REGEXP_LITERALS: &[&str] = &[
    "a", "b", "/", "-", "_", "~", ":", "é", "日", "x", "0", " ", "=", ";", "\"", "'",
];

/// Escapes Go accepts as regexp atoms.
#[rustfmt::skip]
const REGEXP_ESCAPE_ATOMS: &[&str] = &[
    "\\d", "\\w", "\\s", "\\D", "\\W", "\\S", "\\b", "\\B", "\\A", "\\z", "\\.", "\\/", "\\-", "\\_", "\\pL",
    "\\PL", "\\pN", "\\p{Greek}", "\\p{^Han}", "\\P{Lu}", "\\x41", "\\x{1F600}", "\\101", "\\n", "\\t", "\\Q.*\\E",
    "\\Qa",
];

/// Bracketed classes Go accepts.
#[rustfmt::skip]
const REGEXP_CLASSES: &[&str] = &[
    "[a-z]", "[^a]", "[]a]", "[^]]", "[a-z0-9_-]", "[[:alpha:]]", "[[:^digit:]\\d]", "[\\pL]", "[.*+]", "[é-ü]",
    "[\\x00-\\x7F]", "[-a]", "[a-]",
];

/// Regexp atoms Go refuses (RE2 has no backreferences, `\Z`, `\G`, ...), or that only newer Go
/// versions accept.
#[rustfmt::skip]
const BROKEN_REGEXP_ATOMS: &[&str] = &[
    "\\1", "\\8", "\\q", "\\C", "\\Z", "\\G", "\\K", "\\e", "\\h", "\\R", "\\X", "\\N", "\\o", "\\x{}",
    "\\x{110000}", "\\xG1", "\\p{Klingon}", "\\p{Letter}", "\\p{greek}", "\\p{Kawi}", "[z-a]", "[a", "[[:foo:]]",
    "(", ")", "*", "+", "?", "{2}", "\\",
];

/// Escapes Go refuses in an interpreted string, or that decode to invalid UTF-8.
#[rustfmt::skip]
const BROKEN_STRING_ESCAPES: &[&str] = &[
    "\\q", "\\'", "\\400", "\\ud800", "\\U00110000", "\\x4", "\\xff", "\\8", "\\u12", "\\",
];

/// Control, invisible and space characters a mutation may insert.
#[rustfmt::skip]
const STRAY_CHARACTERS: &[&str] = &[
    "\t", "\n", "\r", "\u{0}", "\u{7f}", "\u{85}", "\u{a0}", "\u{2028}", "\u{200b}",
    "\u{ffff}",
];

/// Rules that walk one dimension of the grammar exhaustively. Deterministic.
pub fn catalogue() -> Vec<String> {
    let mut rules = Vec::new();

    // Every matcher under the four spellings Traefik registers, and under spellings it does not.
    for (name, args) in MATCHERS {
        let lower = name.to_ascii_lowercase();
        let title = format!("{}{}", &name[..1], &lower[1..]);
        let lower_camel = format!("{}{}", &lower[..1], &name[1..]);
        let swapped: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        let spellings = [
            name.to_string(),
            lower.clone(),
            name.to_ascii_uppercase(),
            title,
            lower_camel,
            swapped,
            format!("{name}s"),
            format!("{name}_"),
            format!("_{name}"),
            format!("{name}2"),
            format!(
                "{}{}",
                &name[..name.len() - 1],
                name[name.len() - 1..].to_ascii_uppercase()
            ),
        ];
        for spelling in spellings {
            rules.push(call(&spelling, args));
        }
        // Arity: none, one short, one extra, a trailing comma, an empty argument.
        let (mut short, mut long, mut empty) = (args.to_vec(), args.to_vec(), args.to_vec());
        short.pop();
        long.push("x");
        empty[args.len() - 1] = "";
        for args in [&short, &long, &empty] {
            rules.push(call(name, args));
        }
        let call = call(name, args);
        rules.push(format!("{},)", &call[..call.len() - 1]));
    }
    for name in WRONG_MATCHER_NAMES {
        rules.push(format!("{name}(`a`)"));
    }

    // Every \p{..} name, and the one-letter forms, in and out of a character class.
    for name in UNICODE_NAMES {
        rules.push(format!("PathRegexp(`\\p{{{name}}}`)"));
    }
    for name in ["Greek", "Old_Italic", "^Greek", "Letter", "Klingon"] {
        rules.push(format!("PathRegexp(`[a\\p{{{name}}}]`)"));
        rules.push(format!("PathRegexp(`\\P{{{name}}}`)"));
    }
    for letter in 'A'..='Z' {
        rules.push(format!("PathRegexp(`\\p{letter}`)"));
    }
    for tail in ["", "{", "{Greek", "{}", "é", "^L"] {
        rules.push(format!("PathRegexp(`a\\p{tail}`)"));
    }

    // POSIX classes.
    for name in POSIX_NAMES {
        rules.push(format!("PathRegexp(`[[:{name}:]]`)"));
    }
    for class in CLASS_SYNTAX {
        rules.push(format!("PathRegexp(`{class}`)"));
    }

    // Every printable ASCII character after a backslash, in a regexp and in a class.
    for c in ' '..='~' {
        if c == '`' {
            continue;
        }
        rules.push(format!("PathRegexp(`a\\{c}`)"));
        rules.push(format!("PathRegexp(`[\\{c}]`)"));
    }
    for escape in REGEXP_ESCAPES {
        rules.push(format!("PathRegexp(`{escape}`)"));
    }

    // Flags and group syntax.
    for c in ('a'..='z').chain('A'..='Z') {
        rules.push(format!("PathRegexp(`(?{c})a`)"));
    }
    for group in REGEXP_SYNTAX {
        rules.push(format!("PathRegexp(`{group}`)"));
    }

    // Every printable ASCII character after a backslash in a Go interpreted string, and the
    // numeric escapes at their limits.
    for c in ' '..='~' {
        rules.push(format!("Path(\"/\\{c}\")"));
    }
    for escape in STRING_ESCAPES {
        rules.push(format!("Path(\"/{escape}\")"));
    }
    rules.push("Header(`X`, \"a\\u0000b\\nc\\td\")".to_string());
    rules.push("Host(\"a\\x2ecom\")".to_string());
    rules.push("Host(\"\\u00e9.com\")".to_string());
    rules.push("HostRegexp(\"\\u00e9\")".to_string());

    for ip in CLIENT_IPS {
        rules.push(format!("ClientIP(`{ip}`)"));
    }

    // Host, Path and Method arguments Traefik checks.
    for host in HOSTS {
        rules.push(format!("Host(`{host}`)"));
        rules.push(format!("HostRegexp(`{host}`)"));
    }
    for path in PATHS {
        rules.push(format!("Path(`{path}`)"));
        rules.push(format!("PathPrefix(`{path}`)"));
    }
    for method in METHODS {
        rules.push(format!("Method(`{method}`)"));
    }

    // Operators, quotes, whitespace and comments.
    for rule in [
        "Host(`a`) && Path(`/`)",
        "Host(`a`)&&Path(`/`)",
        "Host(`a`) & Path(`/`)",
        "Host(`a`) | Path(`/`)",
        "Host(`a`) &&& Path(`/`)",
        "Host(`a`) ||| Path(`/`)",
        "Host(`a`) &^ Path(`/`)",
        "Host(`a`) and Path(`/`)",
        "Host(`a`) AND Path(`/`)",
        "Host(`a`) == Path(`/`)",
        "Host(`a`) != Path(`/`)",
        "Host(`a`) < Path(`/`)",
        "Host(`a`) + Path(`/`)",
        "Host(`a`); Path(`/`)",
        "Host(`a`), Path(`/`)",
        "Host(`a`) Path(`/`)",
        "-Host(`a`)",
        "^Host(`a`)",
        "*Host(`a`)",
        "!Host(`a`)",
        "! Host(`a`)",
        "!!!Host(`a`)",
        "!(Host(`a`))",
        "Host(`a`)!",
        "(Host(`a`)",
        "Host(`a`))",
        "((Host(`a`))",
        "(Host(`a`)))",
        "()",
        "(Host)(`a`)",
        "Host((`a`))",
        "Host(`a` + `b`)",
        "Host(`a`)[0]",
        "Host.Path(`a`)",
        "a.Host(`a`)",
        "Host[int](`a`)",
        "Host{`a`}",
        "Host(Path(`/`))",
        "Host(`a`)(`b`)",
        "Host('a')",
        "Host('ab')",
        "Host(\"a')",
        "Host(a)",
        "Host(1)",
        "Host(1.5)",
        "Host(0x1)",
        "Host(true)",
        "Host(`a`...)",
        "Host(`a`...,)",
        "Host(`a`,...)",
        "Host(... `a`)",
        "Header(`a`, `b`...)",
        "Header(`a`..., `b`)",
        "Host(`a`) /* c */ && Path(`/`)",
        "/* c */Host(`a`)",
        "Host(`a`) // c",
        "Host(`a`) /* c",
        "Host(/* c */`a`)",
        "Host(`a`) /",
        "Host(`a`)\t&& Path(`/`)",
        "Host(`a`)\n&& Path(`/`)",
        "Host(`a`) &&\nPath(`/`)",
        "Host(`a`)\r\n",
        "Host(`a`)\r",
        "\tHost(`a`)",
        "\nHost(`a`)\n",
        "Host(`a`)\u{b}",
        "Host(`a`)\u{c}",
        "\u{c}Host(`a`)",
        "Host(`a`)\u{85}",
        "Host(`a`)\u{a0}",
        "\u{a0}Host(`a`)",
        "Host(`a`)\u{3000}",
        "Host(`a`)\u{2028}",
        "Host(`a`)\u{a0}&& Path(`/`)",
        "\u{feff}Host(`a`)",
        "Host(`a`)\u{feff}",
        "Host(`a`) \u{feff}&& Path(`/`)",
        "Host(`a\tb`)",
        "Path(`/a\u{0}`)",
        "Path(`/a\u{7f}`)",
        "Path(`/a\u{85}`)",
        "Path(`/a\u{2028}`)",
        "Path(`/a\u{feff}`)",
        "Path(`/a\u{fffe}`)",
        "Path(`/a\u{ffff}`)",
        "Path(\"/a\\uffff\")",
        "Path(`/a\u{200b}`)",
        "Path(`/a}}`)",
        "Path(`/a}`) && Path(`}/`)",
        "Path(\"/a}\\x7d\")",
        "PathRegexp(`^/a{2}}`)",
        "Path(`/a{`) && Path(`{/`)",
        "Path(`/\u{1F600}`)",
        "Host(`\u{1F600}`)",
        "``",
        "`a`",
        "\"a\"",
        "Host",
        "Host(`a`) &&",
        "&& Host(`a`)",
        "Host(`a`) || || Path(`/`)",
        "(Host(`a`) ||) Path(`/`)",
        " ",
        "",
    ] {
        rules.push(rule.to_string());
    }

    // The limits pointsman sets itself, on both sides.
    for depth in [64, 65] {
        rules.push(format!("{}Host(`a`){}", "(".repeat(depth), ")".repeat(depth)));
        rules.push(format!("{}Host(`a`)", "!".repeat(depth)));
    }
    rules.push(format!("Path(`/{}`)", "a".repeat(4096 - 9)));
    rules.push(format!("Path(`/{}`)", "a".repeat(4096 - 8)));
    rules.push(vec!["Path(`/`)"; 400].join("&&"));
    for depth in [100, 101, 1000, 1001] {
        rules.push(format!("PathRegexp(`{}a{}`)", "(".repeat(depth), ")".repeat(depth)));
    }
    rules.push(format!("PathRegexp(`[a-z]{{1000}}{}`)", "b".repeat(190)));
    rules.push(format!("PathRegexp(`(a{{1000}}){}`)", "b".repeat(200)));
    rules
}

/// `count` rules from a generator seeded with `seed`: the same seed gives the same rules.
pub fn random(seed: u64, count: usize) -> Vec<String> {
    let mut generator = Generator {
        rng: Rng::with_seed(seed),
    };
    (0..count).map(|_| generator.rule()).collect()
}

struct Generator {
    rng: Rng,
}

/// Pieces inserted by mutations: operators Traefik does not know, stray punctuation, quotes,
/// comments, and things that look like Go but are not rules.
#[rustfmt::skip]
const GARBAGE: &[&str] = &[
    "&", "|", "&&", "||", "!", "==", "!=", "<", ">", "+", "-", "*", "^", "&^", "<-", ";", ",", ".", "...", ":", "=",
    "(", ")", "[", "]", "{", "}", "`", "\"", "'", "\\", "/* c */", "// c", "#", "$", "@", "?", "~", "%", "0", "1.5",
    "a", "x.y", "Host", "and", "or", "not", "'a'", "`x`", "\"x\"", " ", "  ", "\t", "é", "\u{a0}", "\u{feff}",
];

/// Pieces of rules, for rules made of pieces in any order.
#[rustfmt::skip]
const TOKEN_SOUP: &[&str] = &[
    "Host", "host", "PathPrefix", "Header", "Query", "ClientIP", "Method", "(", ")", "(", ")", ",", " ", " ", "&&",
    "||", "!", "&", "|", "`a`", "`/`", "``", "\"a\"", "\"\\x41\"", "`", "\"", "'a'", "...", "/*", "*/", "//", "1",
    ".", "é",
];

/// Pieces of Go regexps, for patterns made of pieces in any order.
#[rustfmt::skip]
const REGEXP_SOUP: &[&str] = &[
    "(", ")", "(", ")", "[", "]", "{", "}", "*", "+", "?", "|", "^", "$", ".", "\\", "-", ":", "<", ">", "P", "p",
    ",", "0", "1", "2", "9", "a", "z", "i", "s", "U", "Q", "E", "x", "d", "w", "=", "!", "#", "é", "_", "(?",
    "(?P<", "[:", ":]", "\\p{", "\\x{", "{2}", "{1,2}", "\\Q", "\\E",
];

impl Generator {
    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(0..100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.usize(0..items.len())]
    }

    fn rule(&mut self) -> String {
        match self.rng.u8(0..100) {
            0..=9 => return self.soup(TOKEN_SOUP, 1..12),
            10..=24 => {
                let pattern = self.soup(REGEXP_SOUP, 1..14);
                return format!("PathRegexp(`{pattern}`)");
            }
            _ => {}
        }
        let depth = self.rng.usize(0..4);
        let rule = self.expr(depth);
        if self.chance(50) {
            return rule;
        }
        let mut rule = self.mutate(rule);
        if self.chance(15) {
            rule = self.mutate(rule);
        }
        rule
    }

    /// A few pieces of `alphabet`, end to end.
    fn soup(&mut self, alphabet: &[&str], len: std::ops::Range<usize>) -> String {
        let len = self.rng.usize(len);
        (0..len).map(|_| self.pick(alphabet)).collect()
    }

    fn space(&mut self) -> &'static str {
        match self.rng.u8(0..10) {
            0..=2 => "",
            3..=8 => " ",
            _ => "  ",
        }
    }

    fn expr(&mut self, depth: usize) -> String {
        let choice = if depth == 0 { 0 } else { self.rng.u8(0..100) };
        match choice {
            0..=39 => self.matcher(),
            40..=54 => {
                let space = if self.chance(20) { " " } else { "" };
                format!("!{space}{}", self.expr(depth - 1))
            }
            55..=69 => {
                let (open, close) = (self.space(), self.space());
                format!("({open}{}{close})", self.expr(depth - 1))
            }
            _ => {
                let op = self.pick(&["&&", "||"]);
                let (left, right) = (self.expr(depth - 1), self.expr(depth - 1));
                let (before, after) = (self.space(), self.space());
                format!("{left}{before}{op}{after}{right}")
            }
        }
    }

    fn matcher(&mut self) -> String {
        let (name, _) = MATCHERS[self.rng.usize(0..MATCHERS.len())];
        let spelling = self.spelling(name);
        let mut args: Vec<String> = match name {
            "Host" => vec![self.host()],
            "HostRegexp" => vec![if self.chance(15) { self.host() } else { self.regexp() }],
            "Path" | "PathPrefix" => vec![self.path()],
            "PathRegexp" => vec![self.regexp()],
            "Method" => vec![self.method()],
            "Header" => vec![self.header_name(), self.value()],
            "HeaderRegexp" => vec![self.header_name(), self.regexp()],
            "Query" => {
                let mut args = vec![self.value()];
                if self.chance(60) {
                    args.push(self.value());
                }
                args
            }
            "QueryRegexp" => {
                let mut args = vec![self.value()];
                if self.chance(70) {
                    args.push(self.regexp());
                }
                args
            }
            _ => vec![self.pick(CLIENT_IPS).to_string()],
        };
        // Wrong arity, now and then.
        match self.rng.u8(0..100) {
            0..=3 => args.clear(),
            4..=7 => {
                args.pop();
            }
            8..=11 => args.push(self.value()),
            _ => {}
        }
        if !args.is_empty() && self.chance(4) {
            let at = self.rng.usize(0..args.len());
            args[at].clear();
        }
        let quoted: Vec<String> = args.iter().map(|arg| self.quote(arg)).collect();
        let separator = if self.chance(80) { ", " } else { "," };
        let trailing = if self.chance(5) { "," } else { "" };
        let gap = if self.chance(5) { " " } else { "" };
        format!("{spelling}{gap}({}{trailing})", quoted.join(separator))
    }

    fn spelling(&mut self, name: &str) -> String {
        let lower = name.to_ascii_lowercase();
        match self.rng.u8(0..100) {
            0..=69 => name.to_string(),
            70..=77 => lower,
            78..=83 => name.to_ascii_uppercase(),
            84..=89 => format!("{}{}", &name[..1], &lower[1..]),
            90..=94 => format!("{}{}", &lower[..1], &name[1..]),
            _ => {
                // One letter's case flipped.
                let mut chars: Vec<char> = name.chars().collect();
                let at = self.rng.usize(0..chars.len());
                chars[at] = if chars[at].is_ascii_uppercase() {
                    chars[at].to_ascii_lowercase()
                } else {
                    chars[at].to_ascii_uppercase()
                };
                chars.into_iter().collect()
            }
        }
    }

    fn host(&mut self) -> String {
        self.pick(HOSTS).to_string()
    }

    fn path(&mut self) -> String {
        self.pick(PATHS).to_string()
    }

    fn method(&mut self) -> String {
        self.pick(METHODS).to_string()
    }

    fn header_name(&mut self) -> String {
        self.pick(&["X-Env", "Cookie", "x_y", "X Env", "é", "X-\"q\"", "Host"])
            .to_string()
    }

    fn value(&mut self) -> String {
        self.pick(VALUES).to_string()
    }

    /// A Go regexp: a sequence of pieces, each an atom and maybe a repetition.
    fn regexp(&mut self) -> String {
        let pieces = self.rng.usize(1..5);
        let mut out = String::new();
        if self.chance(15) {
            out.push_str(self.pick(&["(?i)", "(?s)", "(?m)", "(?U)", "(?i-s)", "(?is)", "(?-i)"]));
        }
        for _ in 0..pieces {
            out.push_str(&self.regexp_piece(2));
        }
        if self.chance(10) {
            out.push('|');
            out.push_str(&self.regexp_piece(1));
        }
        out
    }

    fn regexp_piece(&mut self, depth: usize) -> String {
        let atom = self.regexp_atom(depth);
        let repeat = match self.rng.u8(0..100) {
            0..=59 => "",
            60..=87 => self.pick(REPEATS),
            _ => self.pick(BROKEN_REPEATS),
        };
        format!("{atom}{repeat}")
    }

    fn regexp_atom(&mut self, depth: usize) -> String {
        if depth > 0 && self.chance(25) {
            let inner: String = (0..self.rng.usize(1..3))
                .map(|_| self.regexp_piece(depth - 1))
                .collect();
            let alternative = if self.chance(30) {
                format!("|{}", self.regexp_piece(depth - 1))
            } else {
                String::new()
            };
            let open = match self.rng.u8(0..100) {
                0..=39 => "(",
                40..=59 => "(?:",
                60..=69 => "(?P<name>",
                70..=74 => "(?<year>",
                75..=79 => "(?i:",
                80..=82 => "(?=",
                83..=85 => "(?!",
                86..=87 => "(?<=",
                88..=89 => "(?<!",
                90..=91 => "(?P<>",
                92..=93 => "(?P<a-b>",
                94..=95 => "(?>",
                96..=97 => "(?x:",
                _ => "(?#",
            };
            let close = if self.chance(5) { "" } else { ")" };
            return format!("{open}{inner}{alternative}{close}");
        }
        let atoms = match self.rng.u8(0..100) {
            0..=34 => REGEXP_LITERALS,
            35..=44 => &[".", "^", "$"],
            45..=64 => REGEXP_ESCAPE_ATOMS,
            65..=84 => REGEXP_CLASSES,
            _ => BROKEN_REGEXP_ATOMS,
        };
        self.pick(atoms).to_string()
    }

    /// Quotes `value` as a Go string: raw (backticks) when it can be, else interpreted with
    /// escapes; now and then with the wrong quotes, none, or a broken escape.
    fn quote(&mut self, value: &str) -> String {
        match self.rng.u8(0..100) {
            0..=59 if !value.contains('`') => format!("`{value}`"),
            0..=91 => self.interpreted(value),
            92..=93 => format!("'{value}'"),
            94..=95 => value.to_string(),
            96..=97 => format!("`{value}"),
            _ => {
                let broken = self.pick(BROKEN_STRING_ESCAPES);
                format!("\"{value}{broken}\"")
            }
        }
    }

    /// A Go interpreted string literal, escaping some characters that need no escape too.
    fn interpreted(&mut self, value: &str) -> String {
        let mut out = String::from("\"");
        for c in value.chars() {
            let escape = c == '"' || c == '\\' || c.is_control() || self.chance(10);
            if !escape {
                out.push(c);
                continue;
            }
            match c {
                '"' if self.chance(70) => out.push_str("\\\""),
                '\\' if self.chance(70) => out.push_str("\\\\"),
                '\n' if self.chance(50) => out.push_str("\\n"),
                '\t' if self.chance(50) => out.push_str("\\t"),
                c if c.is_ascii() => {
                    if self.chance(50) {
                        out.push_str(&format!("\\x{:02x}", c as u32));
                    } else {
                        out.push_str(&format!("\\{:03o}", c as u32));
                    }
                }
                c if (c as u32) < 0x10000 && self.chance(70) => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push_str(&format!("\\U{:08x}", c as u32)),
            }
        }
        out.push('"');
        out
    }

    /// Breaks (or sometimes harmlessly changes) a rule with one small edit.
    fn mutate(&mut self, rule: String) -> String {
        let mut chars: Vec<char> = rule.chars().collect();
        let at = self.rng.usize(0..=chars.len());
        match self.rng.u8(0..100) {
            0..=34 => {
                let garbage: Vec<char> = self.pick(GARBAGE).chars().collect();
                chars.splice(at..at, garbage);
            }
            35..=54 if at < chars.len() => {
                chars.remove(at);
            }
            55..=64 if at < chars.len() => {
                let c = chars[at];
                chars.insert(at, c);
            }
            65..=74 => {
                let (from, to) = match self.rng.u8(0..6) {
                    0 => ("&&", "&"),
                    1 => ("||", "|"),
                    2 => ("&&", " and "),
                    3 => ("`", "'"),
                    4 => (")", ""),
                    _ => ("(", "(("),
                };
                return rule.replacen(from, to, 1);
            }
            75..=84 => {
                let tail = self.pick(&[" &&", " ||", ")", "(", " Host", " /* c */", " // c", "...", "!", ","]);
                return format!("{rule}{tail}");
            }
            85..=89 => {
                let head = self.pick(&["!", "(", ")", "&& ", "`", " ", "\u{feff}", "/* c */"]);
                return format!("{head}{rule}");
            }
            _ => {
                let c = self.pick(STRAY_CHARACTERS);
                chars.splice(at..at, c.chars());
            }
        }
        chars.into_iter().collect()
    }
}

/// `Name(`a`, `b`)`.
fn call(name: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("`{a}`")).collect();
    format!("{name}({})", args.join(", "))
}
