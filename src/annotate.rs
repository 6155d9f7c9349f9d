//! Drawing the caption: the seed's red text at (10, 30) of the original image, exactly as the original draws
//! it, or a band laid out by [`crate::caption`] (`box`, `bars`).
use crate::caption::{self, Entry, Layout};
use crate::error::Result;
use crate::{Labels, Scores};
use opencv::{core, imgproc, prelude::*};

/// How the caption is drawn (`--caption`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Style {
    /// The original's: "Label: {label}, {prob}%" in red at (10, 30), the same size on any image
    #[default]
    Seed,
    /// The top-1's first name and probability in white on a dark band across the top, sized to the image
    Box,
    /// The top k predictions on the band, one row each, with a bar as long as its probability
    Bars,
}

impl Style {
    /// The labels and probabilities a caption of this style shows, most likely first: the most likely class
    /// (the seed's argmax), or the top `k` for bars.
    pub fn shown<'a>(self, scores: &Scores, k: usize, labels: &'a Labels) -> Vec<(&'a str, f32)> {
        let predictions = match self {
            Style::Seed | Style::Box => vec![scores.best()],
            Style::Bars => scores.top(k),
        };
        predictions.iter().map(|p| (labels.get(p.index), p.probability)).collect()
    }
}

/// The text the seed draws: `"Label: {label}, {prob * 100:.2f}%"`, with the probability as a Python float.
///
/// ```
/// assert_eq!(classify_image::annotate::caption("wreck", 0.99994), "Label: wreck, 99.99%");
/// ```
pub fn caption(label: &str, probability: f32) -> String {
    format!("Label: {label}, {}", caption::percent(probability))
}

/// Draws the caption onto `image` exactly as the seed's `cv2.putText` call does.
pub fn draw(image: &mut core::Mat, text: &str) -> Result<()> {
    red_text(image, text, core::Point::new(10, 30), 0.8, 2)
}

/// Red Hershey Simplex text with its baseline starting at `at`: the seed's caption style, at any size.
pub fn red_text(image: &mut core::Mat, text: &str, at: core::Point, scale: f64, thickness: i32) -> Result<()> {
    let red = core::Scalar::new(0.0, 0.0, 255.0, 0.0);
    imgproc::put_text(image, text, at, imgproc::FONT_HERSHEY_SIMPLEX, scale, red, thickness, imgproc::LINE_8, false)?;
    Ok(())
}

/// Draws the caption of `style` for `shown` (labels and probabilities, most likely first; [`Style::shown`]).
/// `note` (the video's classification rate) goes under it: red at (10, 60) in the seed's style, as a last row
/// of the band otherwise.
pub fn draw_caption(image: &mut core::Mat, style: Style, shown: &[(&str, f32)], note: Option<&str>) -> Result<()> {
    let bars = match style {
        Style::Seed => {
            if let Some((label, probability)) = shown.first() {
                draw(image, &caption(label, *probability))?;
            }
            if let Some(note) = note {
                red_text(image, note, core::Point::new(10, 60), 0.6, 1)?;
            }
            return Ok(());
        }
        Style::Box => false,
        Style::Bars => true,
    };
    let count = if bars { shown.len() } else { 1 };
    let mut entries: Vec<Entry> =
        shown.iter().take(count).map(|(label, probability)| Entry::prediction(label, *probability, bars)).collect();
    entries.extend(note.map(Entry::note));
    match caption::layout(image.size()?, &entries)? {
        Some(layout) => draw_band(image, &layout),
        None => Ok(()),
    }
}

/// A copy of `image` with the caption drawn on it; the original stays as it was.
pub fn annotated(image: &core::Mat, style: Style, shown: &[(&str, f32)], note: Option<&str>) -> Result<core::Mat> {
    let mut copy = image.try_clone()?;
    draw_caption(&mut copy, style, shown, note)?;
    Ok(copy)
}

/// What the band keeps of the picture under it: a fifth, so that white text stands out on any image.
const BAND_KEEPS: f64 = 0.2;
/// Bars: a mid blue (BGR) that white text stands out on.
const BAR: [f64; 3] = [160.0, 96.0, 32.0];
const WHITE: [f64; 3] = [255.0; 3];

/// Draws a laid-out band: the picture under it darkened, the bars, then the texts in white.
pub fn draw_band(image: &mut core::Mat, layout: &Layout) -> Result<()> {
    let mut dark = core::Mat::default();
    core::Mat::roi(image, layout.band)?.convert_to(&mut dark, -1, BAND_KEEPS, 0.0)?;
    dark.copy_to(&mut core::Mat::roi_mut(image, layout.band)?)?;
    let colour = |[b, g, r]: [f64; 3]| core::Scalar::new(b, g, r, 0.0);
    for bar in &layout.bars {
        imgproc::rectangle(image, *bar, colour(BAR), imgproc::FILLED, imgproc::LINE_8, 0)?;
    }
    let font = layout.font;
    for (text, at) in &layout.texts {
        imgproc::put_text(
            image,
            text,
            *at,
            caption::FONT,
            font.scale,
            colour(WHITE),
            font.thickness,
            imgproc::LINE_AA,
            false,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caption::Font;

    const GREY: f64 = 128.0;
    const LONG: &str = "American_Staffordshire_terrier, Staffordshire_terrier, American_pit_bull_terrier";
    /// The highest and lowest glyphs, to check that nothing leaves the band.
    const TALL: &str = "(|)[gjpqy]{$}_Q, Tall";

    fn grey(width: i32, height: i32) -> core::Mat {
        core::Mat::new_rows_cols_with_default(height, width, core::CV_8UC3, core::Scalar::all(GREY)).unwrap()
    }

    fn same(a: &core::Mat, b: &core::Mat) -> bool {
        a.size().unwrap() == b.size().unwrap() && a.data_bytes().unwrap() == b.data_bytes().unwrap()
    }

    /// The entries `draw_caption` makes for `style`.
    fn entries(style: Style, label: &str, note: Option<&str>) -> Vec<Entry> {
        let bars = style == Style::Bars;
        let mut entries = vec![Entry::prediction(label, 0.9712, bars)];
        if bars {
            entries
                .extend([("tabby, tabby cat", 0.02), ("tiger_cat", 0.005)].map(|(l, p)| Entry::prediction(l, p, true)));
        }
        entries.extend(note.map(Entry::note));
        entries
    }

    #[test]
    fn seed_draws_exactly_what_the_original_draws() {
        let image = grey(535, 400);
        let shown = [("fox_squirrel, eastern_fox_squirrel, Sciurus_niger", 0.9712f32)];
        let ours = annotated(&image, Style::Seed, &shown, Some("12.5 classifications/s")).unwrap();
        let mut expected = image.try_clone().unwrap();
        let red = core::Scalar::new(0.0, 0.0, 255.0, 0.0);
        for (text, at, scale, thickness) in [
            ("Label: fox_squirrel, eastern_fox_squirrel, Sciurus_niger, 97.12%", (10, 30), 0.8, 2),
            ("12.5 classifications/s", (10, 60), 0.6, 1),
        ] {
            let at = core::Point::new(at.0, at.1);
            imgproc::put_text(
                &mut expected,
                text,
                at,
                imgproc::FONT_HERSHEY_SIMPLEX,
                scale,
                red,
                thickness,
                imgproc::LINE_8,
                false,
            )
            .unwrap();
        }
        assert!(same(&ours, &expected), "the seed's caption changed");
        assert!(!same(&ours, &image));
        assert_eq!(Style::default(), Style::Seed);
    }

    /// Draws the layout for a `width`×`height` image into a grey canvas with a margin around the image's place;
    /// fails if anything outside that place changed. Returns the canvas's image region and the layout.
    fn draw_in_margin(width: i32, height: i32, entries: &[Entry]) -> Option<(core::Mat, Layout)> {
        const MARGIN: i32 = 16;
        let layout = caption::layout(core::Size::new(width, height), entries).unwrap()?;
        let mut canvas = grey(width + 2 * MARGIN, height + 2 * MARGIN);
        draw_band(&mut canvas, &layout.translated(core::Point::new(MARGIN, MARGIN))).unwrap();
        let place = core::Rect::new(MARGIN, MARGIN, width, height);
        let inside = core::Mat::roi(&canvas, place).unwrap().try_clone().unwrap();
        core::Mat::roi_mut(&mut canvas, place).unwrap().set_to_def(&core::Scalar::all(GREY)).unwrap();
        let (mut min, mut max) = (0.0, 0.0);
        let flat = canvas.reshape(1, 0).unwrap();
        core::min_max_loc(&flat, Some(&mut min), Some(&mut max), None, None, &core::no_array()).unwrap();
        assert_eq!((min, max), (GREY, GREY), "{width}x{height}: pixels outside the image changed: {layout:?}");
        Some((inside, layout))
    }

    /// The rows of the text `ending` (its own row of the layout) that hold bright ink: (first, last), or None.
    fn ink_rows(image: &core::Mat, layout: &Layout, ending: &str) -> Option<(i32, i32)> {
        let (text, at) = layout.texts.iter().find(|(t, _)| t.ends_with(ending))?;
        let font = layout.font;
        let width = font.width(text).unwrap();
        let (top, bottom) = ((at.y - font.ascent()).max(0), (at.y + font.descent()).min(image.rows() - 1));
        let mut rows = None;
        for y in top..=bottom {
            let row = image.at_row::<core::Vec3b>(y).unwrap();
            let right = (at.x + width).min(image.cols());
            if row[at.x.max(0) as usize..right as usize].iter().any(|p| p.0.iter().all(|&c| c > 160)) {
                rows = Some(rows.map_or((y, y), |(first, _)| (first, y)));
            }
        }
        rows
    }

    /// Bright ink in the right quarter of the text `ending`: its end is drawn.
    fn ends_inked(image: &core::Mat, layout: &Layout, ending: &str) -> bool {
        let Some((text, at)) = layout.texts.iter().find(|(t, _)| t.ends_with(ending)) else { return false };
        let width = layout.font.width(text).unwrap();
        let font = layout.font;
        (at.y - font.ascent()..=at.y + font.descent()).any(|y| {
            let row = image.at_row::<core::Vec3b>(y).unwrap();
            row[(at.x + width * 3 / 4) as usize..(at.x + width) as usize].iter().any(|p| p.0.iter().all(|&c| c > 160))
        })
    }

    const SIZES: [(i32, i32); 9] =
        [(64, 64), (80, 30), (8000, 300), (300, 8000), (8000, 8000), (535, 400), (1920, 1080), (200, 60), (61, 200)];

    #[test]
    fn box_and_bars_stay_inside_the_image_and_show_the_probability() {
        for style in [Style::Box, Style::Bars] {
            for label in [LONG, TALL] {
                for (width, height) in SIZES {
                    let what = format!("{style:?} {width}x{height} {label}");
                    let entries = entries(style, label, Some("12.5 classifications/s"));
                    let (inside, layout) = draw_in_margin(width, height, &entries).unwrap_or_else(|| panic!("{what}"));
                    assert!(layout.band.height < height, "{what}: {layout:?}");
                    assert!(ends_inked(&inside, &layout, "97.12%"), "{what}: {layout:?}");
                    // Only where not even "..." fits beside the probability, and the height allows one row, is the
                    // name left out.
                    if (width, height) != (80, 30) {
                        let name = &layout.texts[0].0;
                        assert!(!name.ends_with('%'), "{what}: a name first: {layout:?}");
                    }
                    // Everything under the band is untouched.
                    let below = core::Rect::new(0, layout.band.height, width, height - layout.band.height);
                    let rest = core::Mat::roi(&inside, below).unwrap().try_clone().unwrap();
                    assert!(same(&rest, &grey(width, below.height)), "{what}");
                }
            }
        }
    }

    #[test]
    fn absurdly_small_images_are_left_as_they_are() {
        for (width, height) in [(16, 16), (1, 1), (48, 64), (200, 15)] {
            assert!(draw_in_margin(width, height, &entries(Style::Box, LONG, None)).is_none(), "{width}x{height}");
            let image = grey(width, height);
            let drawn = annotated(&image, Style::Bars, &[(LONG, 0.9712)], Some("1.0 classifications/s")).unwrap();
            assert!(same(&drawn, &image), "{width}x{height}");
        }
    }

    #[test]
    fn the_text_is_legible_on_small_images_and_grows_with_large_ones() {
        for (width, height, least) in [(64, 64, 10), (100, 30, 10), (300, 8000, 10), (8000, 300, 15), (8000, 8000, 80)]
        {
            let (inside, layout) = draw_in_margin(width, height, &entries(Style::Box, LONG, None)).unwrap();
            let (first, last) = ink_rows(&inside, &layout, "%").unwrap();
            assert!(last - first + 1 >= least, "{width}x{height}: text {} px high: {layout:?}", last - first + 1);
        }
        let font = |w, h| Font::with_cap(caption::aimed_cap(core::Size::new(w, h)));
        assert!(font(8000, 8000).cap() >= 8000.0 * 0.02);
        assert!(font(8000, 8000).thickness > font(640, 480).thickness);
    }

    #[test]
    fn the_band_darkens_the_picture_and_the_text_is_white() {
        let image = grey(535, 400);
        let drawn = annotated(&image, Style::Box, &[("fox_squirrel, eastern_fox_squirrel", 0.9712)], None).unwrap();
        let layout =
            caption::layout(image.size().unwrap(), &entries(Style::Box, "fox_squirrel", None)).unwrap().unwrap();
        let texts: Vec<&str> = layout.texts.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts, ["fox squirrel", "97.12%"]);
        let corner = drawn.at_2d::<core::Vec3b>(1, 534).unwrap();
        assert_eq!(corner.0, [(GREY * BAND_KEEPS).round() as u8; 3]);
        assert!(ends_inked(&drawn, &layout, "97.12%"));
    }
}
