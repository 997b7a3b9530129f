//! `report.html`: the same text as `report.md`, rendered by pulldown-cmark, with every plot
//! embedded as a `data:` URI so that the file can be mailed, attached to a review or opened
//! offline on a projector: it refers to nothing outside itself.

use std::path::Path;

use base64::Engine;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};

use crate::error::input;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1100px;\
margin:2em auto;padding:0 1em;line-height:1.45;color:#1b1b1b}\
h1,h2,h3{line-height:1.2}\
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}\
th,td{border:1px solid #ccc;padding:.25em .6em}\
th{background:#f2f2f2}\
tr:nth-child(even) td{background:#fafafa}\
img{max-width:100%;height:auto;display:block;margin:1em 0;border:1px solid #eee}\
code{background:#f4f4f4;padding:0 .2em;border-radius:3px}";

/// The media type of an image file we embed, from its extension.
fn media_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit('.').next()?.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some("image/png"),
        "svg" => Some("image/svg+xml"),
        _ => None,
    }
}

/// Renders `markdown` (whose images are files in `dir`) as one self-contained HTML page.
/// An image that cannot be read is an error: a report with a hole in it is not written.
pub fn render(markdown: &str, title: &str, dir: &Path) -> anyhow::Result<String> {
    let mut missing = None;
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let embedded = embed(&dest_url, dir).unwrap_or_else(|e| {
                missing.get_or_insert(e);
                String::new()
            });
            Event::Start(Tag::Image {
                link_type,
                dest_url: CowStr::from(embedded),
                title,
                id,
            })
        }
        other => other,
    });
    let mut body = String::new();
    html::push_html(&mut body, events);
    if let Some(e) = missing {
        return Err(e);
    }
    let mut title_html = String::new();
    html::push_html(&mut title_html, std::iter::once(Event::Text(title.into())));
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title_html}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    ))
}

/// The image file `name` (relative to `dir`) as a `data:` URI.
fn embed(name: &str, dir: &Path) -> anyhow::Result<String> {
    if name.contains("://") || name.starts_with('/') || name.contains("..") {
        return Err(input(format!(
            "report image `{name}` is not a file of the result folder; only local plots are embedded"
        )));
    }
    let media = media_type(name).ok_or_else(|| {
        input(format!(
            "report image `{name}`: only .png and .svg plots can be embedded"
        ))
    })?;
    let path = dir.join(name);
    let bytes = std::fs::read(&path).map_err(|e| {
        input(format!(
            "cannot embed {} in report.html: {e}; run `pollpush report {}` to re-render the plots",
            path.display(),
            dir.display()
        ))
    })?;
    Ok(format!(
        "data:{media};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// Writes `report.md` and `report.html` into `dir`.
pub fn write_reports(dir: &Path, markdown: &str) -> anyhow::Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        input(format!("cannot write {what} in {}: {e}", dir.display()))
    };
    // A plot that was not drawn (no database read, no delivery to draw) is not linked.
    let markdown: String = markdown
        .lines()
        .filter(|l| {
            let image = l
                .strip_prefix("![")
                .and_then(|r| r.split_once("]("))
                .and_then(|(_, r)| r.strip_suffix(')'));
            image.is_none_or(|name| name.contains("://") || dir.join(name).exists())
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let markdown = markdown.as_str();
    std::fs::write(dir.join("report.md"), markdown).map_err(|e| fail("report.md", e))?;
    let title = markdown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .unwrap_or("pollpush report");
    let page = render(markdown, title, dir)?;
    std::fs::write(dir.join("report.html"), page).map_err(|e| fail("report.html", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_embedded_and_nothing_is_external() {
        let dir = tempfile::tempdir().unwrap();
        let png = [0x89u8, b'P', b'N', b'G', 13, 10, 26, 10, 1, 2, 3];
        std::fs::write(dir.path().join("a.png"), png).unwrap();
        let md = "# Title <x>\n\n| a | b |\n|---|---:|\n| 1 | 2 |\n\n![A plot](a.png)\n";
        let page = render(md, "Title <x>", dir.path()).unwrap();
        assert!(page.contains("<title>Title &lt;x&gt;</title>"));
        assert!(page.contains("<table>"), "tables render: {page}");
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        assert!(page.contains(&format!("src=\"data:image/png;base64,{b64}\"")));
        assert!(!page.contains("a.png"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn a_missing_plot_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = render("![x](gone.png)", "t", dir.path()).unwrap_err();
        assert!(err.to_string().contains("gone.png"), "{err}");
        let err = render("![x](http://example.com/x.png)", "t", dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a file"), "{err}");
    }
}
