//! Templates of the `[target]` table: text with `{user}`, `{token}`, `{after}`, `{event}`,
//! `{emit_us}` and `{payload}` placeholders, parsed once and rendered per request. JSON
//! braces need no escaping: only a known name in braces is a placeholder.

/// A value a template may insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// The user's number, 1-based.
    User,
    /// The user's signed token.
    Token,
    /// The last notification id a poller has seen.
    After,
    /// The workload's event number.
    Event,
    /// The emit time, µs since the epoch.
    EmitUs,
    /// The event's JSON payload: {"event":N,"emit_us":T,"pad":"..."}.
    Payload,
}

impl Var {
    fn name(self) -> &'static str {
        match self {
            Var::User => "user",
            Var::Token => "token",
            Var::After => "after",
            Var::Event => "event",
            Var::EmitUs => "emit_us",
            Var::Payload => "payload",
        }
    }

    const ALL: [Var; 6] = [
        Var::User,
        Var::Token,
        Var::After,
        Var::Event,
        Var::EmitUs,
        Var::Payload,
    ];
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// Text with `{name}` placeholders; `{{` and `}}` stand for braces.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// The values a template is rendered with; a placeholder whose value is missing renders
/// as nothing (validation has made sure it cannot occur).
#[derive(Debug, Default, Clone, Copy)]
pub struct Vars<'a> {
    pub user: u64,
    pub token: &'a str,
    pub after: i64,
    pub event: u64,
    pub emit_us: u64,
    pub payload: &'a str,
}

impl Template {
    /// Parses `text`, allowing only the placeholders in `allowed`.
    pub fn parse(text: &str, allowed: &[Var]) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            lit.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                lit.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err("has a lone '}'; write '}}' for a literal brace".into());
            }
            // A JSON object opens with '{' followed by a quote, a space or another brace:
            // those are literal, so JSON templates need no escaping.
            let end = tail.find('}');
            let name = end.map(|e| &tail[1..e]);
            match name {
                Some(n)
                    if !n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                {
                    let var = Var::ALL.iter().find(|v| v.name() == n).copied();
                    match var {
                        Some(v) if allowed.contains(&v) => {
                            if !lit.is_empty() {
                                pieces.push(Piece::Text(std::mem::take(&mut lit)));
                            }
                            pieces.push(Piece::Var(v));
                        }
                        _ => {
                            return Err(format!(
                                "{{{n}}} is not a placeholder here; use {}",
                                allowed
                                    .iter()
                                    .map(|v| format!("{{{}}}", v.name()))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        }
                    }
                    rest = &tail[end.unwrap_or(0) + 1..];
                }
                _ => {
                    // Literal '{' (JSON): keep it, and the matching '}' later is literal too.
                    let close = matching_brace(tail);
                    match close {
                        Some(c) => {
                            // Recurse into the object's inside so placeholders in it work.
                            let inner = Template::parse(&tail[1..c], allowed)?;
                            lit.push('{');
                            for p in inner.pieces {
                                match p {
                                    Piece::Text(t) => lit.push_str(&t),
                                    Piece::Var(v) => {
                                        if !lit.is_empty() {
                                            pieces.push(Piece::Text(std::mem::take(&mut lit)));
                                        }
                                        pieces.push(Piece::Var(v));
                                    }
                                }
                            }
                            lit.push('}');
                            rest = &tail[c + 1..];
                        }
                        None => return Err("has a '{' that is never closed".into()),
                    }
                }
            }
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            pieces.push(Piece::Text(lit));
        }
        Ok(Template {
            source: text.to_string(),
            pieces,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    pub fn render(&self, v: &Vars<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + v.payload.len() + 16);
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(Var::User) => out.push_str(&v.user.to_string()),
                Piece::Var(Var::Token) => out.push_str(v.token),
                Piece::Var(Var::After) => out.push_str(&v.after.to_string()),
                Piece::Var(Var::Event) => out.push_str(&v.event.to_string()),
                Piece::Var(Var::EmitUs) => out.push_str(&v.emit_us.to_string()),
                Piece::Var(Var::Payload) => out.push_str(v.payload),
            }
        }
        out
    }
}

/// The index of the '}' that closes the '{' at the start of `s` (braces nest; strings are
/// not special, which is enough for templates).
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}
