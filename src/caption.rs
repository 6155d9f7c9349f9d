//! The layout of a caption on a band: the font size chosen from the image's size, the band across the top of the
//! image, and where each text and bar goes, long names elided so that nothing leaves the image. Pure functions
//! of the image size and the texts (measured with OpenCV's Hershey metrics); `annotate` draws the result.
//!
//! The font's capital height aims at a 30th of the image width, at most a 16th of its height (so that very flat
//! images keep most of their picture), and at least 10 px so that small images stay legible. It shrinks, down
//! to 8 px, only where the widest probability or one row would not fit otherwise; an image too small for that
//! gets no caption at all rather than a clipped one.
use crate::error::Result;
use opencv::core::{Point, Rect, Size};
use opencv::imgproc;

/// The font of every caption, the seed's.
pub const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;
/// What replaces the end of a name that does not fit (Hershey fonts have no `…`).
pub const ELLIPSIS: &str = "...";

/// Hershey Simplex in font units (pixels at scale 1): the height of capitals, the highest glyphs (brackets,
/// `|`) above the baseline, and the lowest below it.
const CAP_UNITS: f64 = 21.0;
const ASCENT_UNITS: f64 = 25.0;
const DESCENT_UNITS: f64 = 9.0;
/// The capital height aimed at: a 30th of the width, at most a 16th of the height.
const WIDTH_PER_CAP: f64 = 30.0;
const HEIGHT_PER_CAP: f64 = 16.0;
/// The least capital height in pixels: legible; and the least it shrinks to where the caption would not fit.
pub const MIN_CAP_PX: f64 = 10.0;
pub const FLOOR_CAP_PX: f64 = 8.0;
/// Each step of the shrinking, as a fraction of the capital height.
const SHRINK: f64 = 0.95;

/// A Hershey Simplex size: its scale, and a stroke thickness that grows with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Font {
    pub scale: f64,
    pub thickness: i32,
}

impl Font {
    /// The font whose capitals are `px` pixels high; strokes about a tenth of that, at least 1 px.
    pub fn with_cap(px: f64) -> Font {
        let scale = px / CAP_UNITS;
        Font { scale, thickness: ((scale * 2.0).round() as i32).max(1) }
    }

    /// The height of capitals in pixels, strokes not included.
    pub fn cap(&self) -> f64 {
        self.scale * CAP_UNITS
    }

    /// The width `putText` covers from its origin, strokes included; 0 for no text.
    pub fn width(&self, text: &str) -> Result<i32> {
        if text.is_empty() {
            return Ok(0);
        }
        let mut baseline = 0;
        Ok(imgproc::get_text_size(text, FONT, self.scale, self.thickness, &mut baseline)?.width)
    }

    /// Half a stroke and a pixel of anti-aliasing: how far ink reaches beyond a glyph's outline.
    fn bleed(&self) -> i32 {
        self.thickness / 2 + 1
    }

    /// Pixels above the baseline that any glyph can reach.
    pub fn ascent(&self) -> i32 {
        (ASCENT_UNITS * self.scale).ceil() as i32 + self.bleed()
    }

    /// Pixels below the baseline that any glyph can reach.
    pub fn descent(&self) -> i32 {
        (DESCENT_UNITS * self.scale).ceil() as i32 + self.bleed()
    }

    /// Blank space around the band's edges and between rows.
    fn pad(&self) -> i32 {
        ((self.cap() / 4.0).round() as i32).max(2)
    }

    /// The space between a name and its probability.
    fn gap(&self) -> i32 {
        (self.cap() * 0.6).round() as i32
    }
}

/// One line of a caption: `name` may be shortened, `value` (a probability) never; `bar`, a fraction in [0, 1],
/// draws a bar that long behind them.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub value: String,
    pub bar: Option<f32>,
}

impl Entry {
    /// A prediction: the label's [`first_name`] and the probability as a percentage, with a bar or without.
    pub fn prediction(label: &str, probability: f32, bar: bool) -> Entry {
        Entry { name: first_name(label), value: percent(probability), bar: bar.then_some(probability.clamp(0.0, 1.0)) }
    }

    /// A line of text that may be shortened (the video's classification rate).
    pub fn note(text: &str) -> Entry {
        Entry { name: text.to_string(), value: String::new(), bar: None }
    }
}

/// A label's first name, with spaces for underscores: `"tabby, tabby cat"` → `"tabby"`,
/// `"eastern_fox_squirrel"` → `"eastern fox squirrel"`.
pub fn first_name(label: &str) -> String {
    label.split(',').next().unwrap_or_default().trim().replace('_', " ")
}

/// A probability as the seed prints it: a percentage with two decimals, from the value as a Python float.
pub fn percent(probability: f32) -> String {
    format!("{:.2}%", probability as f64 * 100.0)
}

/// `text` if it is at most `width` pixels wide in `font`; otherwise its longest start that is, with
/// [`ELLIPSIS`] after it; an empty string if not even that fits.
pub fn elide(font: Font, text: &str, width: i32) -> Result<String> {
    if font.width(text)? <= width {
        return Ok(text.to_string());
    }
    let ends = text.char_indices().map(|(i, _)| i).rev();
    for end in ends {
        let shorter = format!("{}{ELLIPSIS}", text[..end].trim_end());
        if font.width(&shorter)? <= width {
            return Ok(shorter);
        }
    }
    Ok(String::new())
}

/// Where everything of a caption goes, in the image's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub font: Font,
    /// Darkened under the text: the full width of the image, from its top.
    pub band: Rect,
    /// Filled on the band, before the texts.
    pub bars: Vec<Rect>,
    /// Each text with the left end of its baseline, as `putText` takes it.
    pub texts: Vec<(String, Point)>,
}

impl Layout {
    /// The same layout moved by `by`, for drawing into a larger canvas.
    pub fn translated(&self, by: Point) -> Layout {
        let shift = |r: &Rect| Rect::new(r.x + by.x, r.y + by.y, r.width, r.height);
        Layout {
            font: self.font,
            band: shift(&self.band),
            bars: self.bars.iter().map(shift).collect(),
            texts: self.texts.iter().map(|(t, at)| (t.clone(), *at + by)).collect(),
        }
    }
}

/// The capital height the image's size asks for, before anything is fitted.
pub fn aimed_cap(size: Size) -> f64 {
    (size.width as f64 / WIDTH_PER_CAP).min(size.height as f64 / HEIGHT_PER_CAP).max(MIN_CAP_PX)
}

/// The layout of `entries` on an image of `size`, the first at the top. Each entry takes one row when its name
/// fits whole beside its value; otherwise two rows (the name above, elided if it is still too wide, the value
/// below) where the height allows, else one row with the name elided. Entries that do not fit in the height
/// are left out, the last first. `None` when not even the first entry fits: nothing is drawn.
pub fn layout(size: Size, entries: &[Entry]) -> Result<Option<Layout>> {
    let Some(font) = font_for(size, entries)? else { return Ok(None) };
    let (pad, bleed) = (font.pad(), font.bleed());
    let pitch = font.ascent() + font.descent() + pad;
    let left = pad + bleed;
    let inner = size.width - 2 * left;
    let fits = |rows: i32| pad + rows * pitch <= size.height;

    let mut layout = Layout { font, band: Rect::default(), bars: Vec::new(), texts: Vec::new() };
    let mut rows = 0;
    for entry in entries {
        let gap = if entry.name.is_empty() || entry.value.is_empty() { 0 } else { font.gap() };
        let value_width = font.width(&entry.value)?;
        let whole = font.width(&entry.name)? + gap + value_width <= inner;
        let lines: Vec<(String, String)> = if whole && fits(rows + 1) {
            vec![(entry.name.clone(), entry.value.clone())]
        } else if !entry.name.is_empty() && !entry.value.is_empty() && fits(rows + 2) {
            vec![(elide(font, &entry.name, inner)?, String::new()), (String::new(), entry.value.clone())]
        } else if fits(rows + 1) {
            vec![(elide(font, &entry.name, inner - gap - value_width)?, entry.value.clone())]
        } else {
            break;
        };
        let top = pad + rows * pitch;
        if let Some(fraction) = entry.bar {
            let length = (fraction as f64 * (size.width - 2 * pad) as f64).round() as i32;
            if length > 0 {
                layout.bars.push(Rect::new(pad, top, length, lines.len() as i32 * pitch - pad));
            }
        }
        for (name, value) in lines {
            let baseline = pad + rows * pitch + font.ascent();
            let name_width = font.width(&name)?;
            if !name.is_empty() {
                layout.texts.push((name, Point::new(left, baseline)));
            }
            if !value.is_empty() {
                let x = if name_width == 0 { left } else { left + name_width + gap };
                layout.texts.push((value, Point::new(x, baseline)));
            }
            rows += 1;
        }
    }
    if rows == 0 {
        return Ok(None);
    }
    layout.band = Rect::new(0, 0, size.width, pad + rows * pitch);
    Ok(Some(layout))
}

/// The font for `entries` on an image of `size`: [`aimed_cap`], shrunk (not below [`FLOOR_CAP_PX`]) until the
/// widest value fits the width and one row the height; `None` if they never do.
fn font_for(size: Size, entries: &[Entry]) -> Result<Option<Font>> {
    let mut cap = aimed_cap(size);
    while cap >= FLOOR_CAP_PX {
        let font = Font::with_cap(cap);
        let mut widest = 0;
        for entry in entries {
            widest = widest.max(font.width(&entry.value)?);
        }
        let left = font.pad() + font.bleed();
        let row = font.pad() + font.ascent() + font.descent() + font.pad();
        if widest <= size.width - 2 * left && row <= size.height {
            return Ok(Some(font));
        }
        cap *= SHRINK;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_names_lose_synonyms_and_underscores() {
        assert_eq!(first_name("tabby, tabby cat"), "tabby");
        assert_eq!(first_name("fox_squirrel, eastern_fox_squirrel, Sciurus_niger"), "fox squirrel");
        assert_eq!(first_name("espresso"), "espresso");
        assert_eq!(first_name(""), "");
        assert_eq!(percent(0.99994), "99.99%");
        assert_eq!(percent(1.0), "100.00%");
    }

    #[test]
    fn elision_keeps_the_longest_start_that_fits() {
        let font = Font::with_cap(20.0);
        let name = "American Staffordshire terrier";
        assert_eq!(elide(font, name, 10_000).unwrap(), name);
        let width = font.width("American Staff...").unwrap();
        assert_eq!(elide(font, name, width).unwrap(), "American Staff...");
        assert_eq!(elide(font, name, width - 1).unwrap(), "American Staf...");
        // No space before the ellipsis.
        assert_eq!(elide(font, name, font.width("American ...").unwrap()).unwrap(), "American...");
        assert_eq!(elide(font, name, font.width("...").unwrap()).unwrap(), "...");
        assert_eq!(elide(font, name, 3).unwrap(), "");
    }

    #[test]
    fn the_font_follows_the_width_and_flat_images_follow_the_height() {
        assert_eq!(aimed_cap(Size::new(600, 450)), 20.0);
        assert_eq!(aimed_cap(Size::new(8000, 8000)), 8000.0 / 30.0);
        assert_eq!(aimed_cap(Size::new(8000, 320)), 20.0, "a 16th of the height");
        assert_eq!(aimed_cap(Size::new(64, 64)), MIN_CAP_PX);
        assert_eq!(aimed_cap(Size::new(300, 8000)), MIN_CAP_PX);
        let big = Font::with_cap(aimed_cap(Size::new(8000, 8000)));
        assert!(big.thickness >= 20, "{big:?}");
        assert_eq!(Font::with_cap(MIN_CAP_PX).thickness, 1);
    }

    fn box_layout(w: i32, h: i32, label: &str, p: f32) -> Option<Layout> {
        layout(Size::new(w, h), &[Entry::prediction(label, p, false)]).unwrap()
    }

    #[test]
    fn a_short_name_takes_one_row_and_a_long_one_two_or_an_ellipsis() {
        let one = box_layout(600, 450, "espresso", 0.9176).unwrap();
        let texts: Vec<&str> = one.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["espresso", "91.76%"]);
        assert_eq!(one.texts[0].1.y, one.texts[1].1.y, "one row");
        assert_eq!(one.band.width, 600);

        let long = "American_Staffordshire_terrier, Staffordshire_terrier";
        let two = box_layout(200, 450, long, 0.5).unwrap();
        let texts: Vec<&str> = two.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts.len(), 2);
        assert!(texts[0].ends_with(ELLIPSIS) && texts[0].starts_with("American"), "{texts:?}");
        assert_eq!(texts[1], "50.00%");
        assert!(two.texts[1].1.y > two.texts[0].1.y, "two rows");
        let short = box_layout(200, 450, "espresso", 0.5).unwrap();
        assert_eq!(short.texts.len(), 2);
        assert!(two.band.height > short.band.height);

        // Too flat for two rows: one, with the name elided beside the probability.
        let flat = box_layout(200, 30, long, 0.5).unwrap();
        let texts: Vec<&str> = flat.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(texts[0].ends_with(ELLIPSIS) && texts[1] == "50.00%", "{texts:?}");
        assert!(flat.band.height <= 30);
    }

    #[test]
    fn absurdly_small_images_get_no_caption() {
        for (w, h) in [(16, 16), (40, 64), (64, 12), (1, 1)] {
            assert_eq!(box_layout(w, h, "tabby, tabby cat", 1.0), None, "{w}x{h}");
        }
        let tiny = box_layout(64, 64, "tabby, tabby cat", 1.0).unwrap();
        assert!(tiny.texts.iter().any(|(t, _)| t == "100.00%"), "{tiny:?}");
        assert!(tiny.font.cap() >= FLOOR_CAP_PX);
    }

    #[test]
    fn bars_are_as_long_as_their_probability_and_rows_stop_at_the_bottom() {
        let entries: Vec<Entry> =
            [("a", 0.5), ("b", 0.25), ("c", 0.0)].iter().map(|(l, p)| Entry::prediction(l, *p, true)).collect();
        let three = layout(Size::new(600, 450), &entries).unwrap().unwrap();
        assert_eq!(three.bars.len(), 2, "no bar for 0");
        let full = 600 - 2 * three.font.pad();
        assert_eq!(three.bars[0].width, full / 2);
        assert_eq!(three.bars[1].width, (full as f64 / 4.0).round() as i32);
        assert_eq!(three.texts.len(), 6);
        let flat = layout(Size::new(600, 60), &entries).unwrap().unwrap();
        assert!(flat.texts.len() < 6 && flat.band.height <= 60, "{flat:?}");
        let texts: Vec<&str> = flat.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts[..2], ["a", "50.00%"], "the most likely first");
    }
}
