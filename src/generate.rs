//! `fastlag generate` (hidden; the Debian package runs it, scripts/package.sh): man pages
//! from the clap definitions (clap_mangen) and from the README's configuration reference,
//! shell completions (clap_complete). Nothing here is hand-kept text: the pages follow
//! the code and the README they are generated from.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use clap_complete::Shell;

use crate::AnyError;

/// What to generate.
#[derive(Debug, Subcommand)]
pub(crate) enum Generate {
    /// Man pages: fastlag(8), fastlag-COMMAND(8) for each command, fastlag.toml(5).
    Man {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
    /// Shell completions: fastlag.bash, _fastlag (zsh), fastlag.fish.
    Completions {
        /// Output directory (created if missing).
        dir: PathBuf,
    },
}

/// The README: its "Configuration" and "Reload" sections are fastlag.toml(5).
const README: &str = include_str!("../README.md");

/// Runs `fastlag generate ...` with the CLI's definition `cmd`.
pub(crate) fn run(what: Generate, cmd: clap::Command) -> Result<ExitCode, AnyError> {
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    match what {
        Generate::Man { dir } => {
            create(&dir)?;
            for path in man_pages(cmd, &dir)? {
                println!("{}", path.display());
            }
        }
        Generate::Completions { dir } => {
            create(&dir)?;
            // Completions offer what --help shows: without the hidden commands (this one).
            let mut cmd = visible(&cmd);
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path =
                    clap_complete::generate_to(shell, &mut cmd, "fastlag", &dir).map_err(|e| {
                        format!("writing {shell} completions to {}: {e}", dir.display())
                    })?;
                println!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// fastlag's `cmd` without its hidden subcommands (clap_complete would offer them).
fn visible(cmd: &clap::Command) -> clap::Command {
    clap::Command::new("fastlag")
        .version(env!("CARGO_PKG_VERSION"))
        .about(cmd.get_about().cloned().unwrap_or_default())
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

fn create(dir: &Path) -> Result<(), AnyError> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()).into())
}

/// fastlag(8), one page per visible command, fastlag.toml(5).
fn man_pages(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>, AnyError> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    let mut write = |name: String, text: Vec<u8>| -> Result<(), AnyError> {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&text))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.push(path);
        Ok(())
    };
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let see_also: Vec<String> = subs
        .iter()
        .map(|s| format!("fastlag-{}(8)", s.get_name()))
        .chain(["fastlag.toml(5)".to_string()])
        .collect();
    let mut top = page(&cmd, "8")?;
    top.extend_from_slice(service_sections().as_bytes());
    top.extend_from_slice(see_also_section(&see_also).as_bytes());
    write("fastlag.8".into(), top)?;
    for s in &subs {
        let mut text = page(s, "8")?;
        text.extend_from_slice(
            see_also_section(&["fastlag(8)".into(), "fastlag.toml(5)".into()]).as_bytes(),
        );
        write(format!("fastlag-{}.8", s.get_name()), text)?;
    }
    write("fastlag.toml.5".into(), config_page().into_bytes())?;
    Ok(written)
}

fn page(cmd: &clap::Command, section: &str) -> Result<Vec<u8>, AnyError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section(section)
        .source(format!("fastlag {}", env!("CARGO_PKG_VERSION")))
        .manual("fastlag")
        .render(&mut out)?;
    Ok(out)
}

fn see_also_section(pages: &[String]) -> String {
    let refs: Vec<String> = pages
        .iter()
        .map(|p| match p.split_once('(') {
            Some((name, sec)) => format!("\\fB{}\\fR({sec}", esc(name)),
            None => esc(p),
        })
        .collect();
    format!(".SH \"SEE ALSO\"\n{}\n", refs.join(",\n"))
}

/// FILES and the service: what the package installs.
fn service_sections() -> String {
    [
        ".SH FILES",
        ".TP",
        "\\fI/etc/fastlag/fastlag.toml\\fR",
        "The configuration the service runs (see \\fBfastlag.toml\\fR(5)).",
        ".TP",
        "\\fI/etc/default/fastlag\\fR",
        "Optional environment for the service (FASTLAG_OPTS, RUST_LOG).",
        ".TP",
        "\\fI/run/fastlag/fastlag.sock\\fR",
        "The management socket \\fBfastlag ctl\\fR talks to.",
        ".SH SERVICE",
        "The unit \\fIfastlag.service\\fR runs \\fBfastlag run\\fR as Type=notify: it is active once",
        "the ports are started and the control thread runs, \\fBsystemctl status fastlag\\fR shows",
        "its one-line state (bonds and members distributing), \\fBsystemctl reload fastlag\\fR runs",
        "\\fBfastlag ctl reload\\fR, and the control thread pings the watchdog, so a control",
        "thread that stops making progress gets fastlag restarted.",
        "",
    ]
    .join("\n")
}

/// fastlag.toml(5): the README's "Configuration" and "Reload" sections in roff.
fn config_page() -> String {
    let mut out = format!(
        ".TH FASTLAG.TOML 5 \"\" \"fastlag {}\" \"fastlag\"\n\
         .SH NAME\nfastlag.toml \\- fastlag configuration file\n\
         .SH SYNOPSIS\n\\fI/etc/fastlag/fastlag.toml\\fR\n",
        env!("CARGO_PKG_VERSION")
    );
    for (heading, title) in [("Configuration", "DESCRIPTION"), ("Reload", "RELOAD")] {
        out.push_str(&format!(".SH {title}\n"));
        out.push_str(&markdown_to_roff(readme_section(heading)));
    }
    out.push_str(&see_also_section(&[
        "fastlag(8)".into(),
        "fastlag-run(8)".into(),
        "fastlag-check-config(8)".into(),
    ]));
    out
}

/// The body of the README's "## `heading`" section (up to the next "## ").
fn readme_section(heading: &str) -> &'static str {
    let start = README
        .find(&format!("\n## {heading}\n"))
        .map(|i| i + heading.len() + 5)
        .unwrap_or_else(|| panic!("README.md has no \"## {heading}\" section"));
    let rest = &README[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// roff text: backslashes escaped, a line starting with '.' or '\'' guarded, `code` bold.
fn esc(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    let mut out = String::new();
    let mut bold = false;
    for c in s.chars() {
        if c == '`' {
            out.push_str(if bold { "\\fR" } else { "\\fB" });
            bold = !bold;
        } else {
            out.push(c);
        }
    }
    if bold {
        out.push_str("\\fR");
    }
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// The README's markdown subset: paragraphs, "- " lists, code fences, tables.
fn markdown_to_roff(md: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    let mut para = false;
    for line in md.lines() {
        if line.starts_with("```") {
            out.push_str(if in_code {
                ".fi\n.RE\n"
            } else {
                ".PP\n.RS 4\n.nf\n"
            });
            in_code = !in_code;
            para = false;
            continue;
        }
        if in_code {
            let l = line.replace('\\', "\\e");
            out.push_str(if l.starts_with('.') || l.starts_with('\'') {
                "\\&"
            } else {
                ""
            });
            out.push_str(&l);
            out.push('\n');
            continue;
        }
        let t = line.trim();
        if t.is_empty() {
            para = false;
            continue;
        }
        if let Some(row) = t.strip_prefix('|') {
            // A table row: "| section | keys |"; the header and its rule are dropped.
            let cells = split_row(row);
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
                || cells.first().is_some_and(|c| c == "section")
            {
                continue;
            }
            out.push_str(".TP\n");
            out.push_str(&esc(&cells[0]));
            out.push('\n');
            out.push_str(&esc(&cells[1..].join(" ")));
            out.push('\n');
            para = true;
            continue;
        }
        if let Some(item) = t.strip_prefix("- ") {
            out.push_str(".IP \\(bu 2\n");
            out.push_str(&esc(item));
            out.push('\n');
            para = true;
            continue;
        }
        if !para {
            out.push_str(".PP\n");
            para = true;
        }
        out.push_str(&esc(t));
        out.push('\n');
    }
    out
}

/// The cells of a markdown table row (after its leading '|'); "\|" is a literal '|'.
fn split_row(row: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().unwrap().push('|');
            }
            '|' => cells.push(String::new()),
            _ => cells.last_mut().unwrap().push(c),
        }
    }
    let mut cells: Vec<String> = cells.into_iter().map(|c| c.trim().to_string()).collect();
    if cells.last().is_some_and(String::is_empty) {
        cells.pop();
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_page_carries_every_section_of_the_readme_table() {
        let page = config_page();
        for key in [
            "[dataplane]",
            "[[port]]",
            "[[bond]]",
            "[bond.lacp]",
            "[forward]",
            "[management]",
        ] {
            assert!(
                page.contains(&format!(".TP\n\\fB{key}\\fR")),
                "{key} missing:\n{page}"
            );
        }
        // "\|" in a cell is a literal bar, not a cell break.
        assert!(
            page.contains("\\fB802.3ad\\fR | \\fBactive\\-backup\\fR"),
            "{page}"
        );
        assert!(page.contains(".SH RELOAD"));
    }

    #[test]
    fn roff_escapes() {
        assert_eq!(esc(".x `a-b` \\"), "\\&.x \\fBa\\-b\\fR \\e");
    }
}
