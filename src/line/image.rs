//! Reading an image's dimensions from its header, without decoding it (rich-menu rules).

/// Width and height of a PNG or JPEG image, by its header.
pub(crate) fn image_size(content_type: &str, bytes: &[u8]) -> Option<(u32, u32)> {
    match content_type {
        "image/png" => {
            const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
            if bytes.len() < 24 || &bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
                return None;
            }
            let width = u32::from_be_bytes(bytes[16..20].try_into().ok()?);
            let height = u32::from_be_bytes(bytes[20..24].try_into().ok()?);
            Some((width, height))
        }
        "image/jpeg" => {
            if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
                return None;
            }
            // Walk the segments up to a start-of-frame marker, which holds the dimensions.
            let mut at = 2;
            while at + 4 <= bytes.len() {
                if bytes[at] != 0xFF {
                    return None;
                }
                let marker = bytes[at + 1];
                if marker == 0xFF {
                    at += 1;
                    continue;
                }
                let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
                let is_frame =
                    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
                if is_frame {
                    let frame = bytes.get(at + 4..at + 9)?;
                    let height = u32::from(u16::from_be_bytes([frame[1], frame[2]]));
                    let width = u32::from(u16::from_be_bytes([frame[3], frame[4]]));
                    return Some((width, height));
                }
                at += 2 + length;
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::image_size;

    #[test]
    fn reads_png_and_jpeg_dimensions() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(2500u32.to_be_bytes());
        png.extend(843u32.to_be_bytes());
        assert_eq!(image_size("image/png", &png), Some((2500, 843)));
        assert_eq!(image_size("image/jpeg", &png), None);
        // SOI, an APP0 segment of length 4, then SOF0 with height 1686 and width 2500.
        let jpeg = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x00, 0x00, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x06,
            0x96, 0x09, 0xC4,
        ];
        assert_eq!(image_size("image/jpeg", &jpeg), Some((2500, 1686)));
        assert_eq!(image_size("image/jpeg", &jpeg[..12]), None);
    }
}
