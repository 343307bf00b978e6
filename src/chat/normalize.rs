//! Text as the router compares it: NFKC (full-width ASCII and half-width ｶﾀｶﾅ fold to their
//! usual forms), hiragana folded to katakana, lower case, runs of spaces collapsed.

use unicode_normalization::UnicodeNormalization;

/// The comparable form of `text`: `ﾎﾟｲﾝﾄ`, `ポイント` and `ぽいんと` all read `ポイント`;
/// `ＨＥＬＰ` reads `help`.
#[must_use]
pub fn normalize(text: &str) -> String {
    let folded: String = text.nfkc().map(kana).flat_map(char::to_lowercase).collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Hiragana ぁ..ゖ and ゝゞ as katakana (they sit 0x60 below it).
fn kana(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}'..='\u{309E}' => {
            char::from_u32(c as u32 + 0x60).unwrap_or(c)
        }
        c => c,
    }
}

/// A regex pattern for normalised text: its hiragana folded to katakana like the text's (the
/// rest untouched, so escapes such as `\D` keep their meaning).
pub(crate) fn fold_pattern(pattern: &str) -> String {
    pattern.chars().map(kana).collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn width_kana_and_case_variants_read_the_same() {
        for variant in ["ポイント", "ﾎﾟｲﾝﾄ", "ぽいんと", " ポイント "] {
            assert_eq!(normalize(variant), "ポイント", "{variant}");
        }
        assert_eq!(normalize("ＨＥＬＰ"), "help");
        assert_eq!(normalize("注文　状況"), "注文 状況");
        assert_eq!(normalize(""), "");
    }
}
