//! Text from other parties, made safe for a terminal.
//!
//! ManagedCluster status is written by each child's agent, names and labels by
//! parent admins, and server messages by whatever answers: none of it is ours.
//! kubectl escapes ESC and CR in human-readable output (`printers.EscapeTerminal`,
//! the fix for CVE-2021-25743); this goes further and escapes every character
//! that can move the cursor, change colours, rewrite the title, hide text or
//! reorder it on screen: C0 and C1 controls, DEL, and the Unicode bidi controls
//! (the "Trojan Source" class, U+202A-U+202E, U+2066-U+2069), plus the line
//! and paragraph separators. The escape is human-readable and never itself
//! contains a control character. Machine outputs (`-o json|yaml`) do not go
//! through here: their encoders escape by their own rules.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Returns `text` with every terminal-unsafe character replaced: ESC as `^[`
/// (as kubectl writes it), `\r`, `\n`, `\t`, `\b` as their backslash forms,
/// anything else as `\u{XXXX}`. Plain text is returned as is, without a copy.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\x1b' => out.push_str("^["),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:04X}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text with every terminal-unsafe character written as a `\uXXXX`
/// escape. serde_json (like Go's encoding/json) leaves DEL, C1 controls and
/// bidi overrides raw; in a JSON document they can only sit inside strings,
/// where the escape means the same character, so the document is unchanged
/// for a parser. The line breaks of pretty-printing are kept.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if c != '\n' && is_unsafe(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// True for characters that a terminal interprets rather than shows.
fn is_unsafe(c: char) -> bool {
    c.is_control() // C0, DEL, C1 (including U+0085 NEL and U+009B CSI)
        || matches!(c,
            '\u{200E}' | '\u{200F}' | '\u{061C}'      // directional marks
            | '\u{202A}'..='\u{202E}'                 // embeddings and overrides
            | '\u{2066}'..='\u{2069}'                 // isolates
            | '\u{2028}' | '\u{2029}'                 // line and paragraph separators
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let s = "v1.32.13 https://127.0.0.1:6443 Ready ünïcödé";
        assert!(matches!(escape(s), Cow::Borrowed(x) if x == s));
    }

    #[test]
    fn json_keeps_its_meaning() {
        let value = serde_json::json!({"v": "a\u{1b}[2J\u{7f}\u{9b}1m\u{202E}b\u{2028}"});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = escape_json(&text);
        assert!(!safe.chars().any(|c| c != '\n' && is_unsafe(c)), "{safe}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), value);
        assert!(matches!(escape_json("{\n  \"a\": 1\n}"), Cow::Borrowed(_)));
    }

    #[test]
    fn every_unsafe_character_is_escaped_visibly() {
        for (input, want) in [
            ("a\x1b[2Jb", "a^[[2Jb"),
            ("\x1b]0;title\x07", "^[]0;title\\u{0007}"),
            ("x\ry", "x\\ry"),
            ("x\ny", "x\\ny"),
            ("x\x08y", "x\\by"),
            ("\u{9b}31m", "\\u{009B}31m"),
            ("\u{7f}", "\\u{007F}"),
            ("evil\u{202E}txt.exe", "evil\\u{202E}txt.exe"),
            ("\u{2066}a\u{2069}", "\\u{2066}a\\u{2069}"),
            ("a\u{2028}b", "a\\u{2028}b"),
        ] {
            let got = escape(input);
            assert_eq!(got, want, "input {input:?}");
            assert!(!got.chars().any(is_unsafe), "escape of {input:?} still unsafe");
        }
    }
}
