//! The producers → subjects → consumers graph, laid out here as SVG: three
//! columns, each ordered to keep edges short (subjects by topic, services by
//! the mean position of the subjects they touch). No external renderer.

use std::collections::BTreeMap;

use herald_contracts::Catalog;
use maud::{html, Markup};

use super::{service_path, subject_path, trusted};

const ROW: f64 = 28.0;
const BOX_H: f64 = 20.0;
const MARGIN: f64 = 30.0;
const COLUMNS: [(f64, f64); 3] = [(10.0, 190.0), (330.0, 270.0), (760.0, 190.0)];
const WIDTH: f64 = 960.0;
/// The producer node standing for a topic open to every service (`producers = ["*"]`).
const EVERY_SERVICE: &str = "* (every backend service)";

struct Node {
    label: String,
    href: String,
}

struct Layout {
    producers: Vec<Node>,
    subjects: Vec<Node>,
    consumers: Vec<Node>,
    /// (producer index, subject index)
    sends: Vec<(usize, usize)>,
    /// (subject index, consumer index)
    receives: Vec<(usize, usize)>,
}

fn layout(catalog: &Catalog) -> Layout {
    let subjects: Vec<Node> = catalog
        .subjects()
        .iter()
        .map(|s| Node {
            label: s.name.clone(),
            href: subject_path(&s.name),
        })
        .collect();
    // Service name -> subject indices, for producers and for consumers.
    let mut produced: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut consumed: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, s) in catalog.subjects().iter().enumerate() {
        if let Some(t) = catalog.topic_for_subject(&s.name) {
            if t.producers.iter().any(|p| p == "*") {
                produced.entry(EVERY_SERVICE.into()).or_default().push(i);
            } else {
                for p in &t.producers {
                    produced.entry(p.clone()).or_default().push(i);
                }
            }
        }
        for c in catalog.consumers_of(&s.name) {
            let list = consumed.entry(c.service.clone()).or_default();
            if !list.contains(&i) {
                list.push(i);
            }
        }
    }
    let order = |m: BTreeMap<String, Vec<usize>>| {
        let mut v: Vec<(String, Vec<usize>)> = m.into_iter().collect();
        let mean = |xs: &[usize]| xs.iter().sum::<usize>() as f64 / xs.len().max(1) as f64;
        v.sort_by(|a, b| mean(&a.1).total_cmp(&mean(&b.1)).then(a.0.cmp(&b.0)));
        v
    };
    let node = |name: &str| Node {
        label: name.to_string(),
        href: if name == EVERY_SERVICE {
            "index.html#services".into()
        } else {
            service_path(name)
        },
    };
    let (mut producers, mut consumers, mut sends, mut receives) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (name, subs)) in order(produced).into_iter().enumerate() {
        producers.push(node(&name));
        sends.extend(subs.into_iter().map(|s| (i, s)));
    }
    for (i, (name, subs)) in order(consumed).into_iter().enumerate() {
        consumers.push(node(&name));
        receives.extend(subs.into_iter().map(|s| (s, i)));
    }
    Layout {
        producers,
        subjects,
        consumers,
        sends,
        receives,
    }
}

/// Vertical centre of row `i` in a column of `n` rows, columns centred on `height`.
fn y(i: usize, n: usize, height: f64) -> f64 {
    let top = (height - n as f64 * ROW) / 2.0;
    top + i as f64 * ROW + ROW / 2.0
}

fn edge(x1: f64, y1: f64, x2: f64, y2: f64, class: &str) -> Markup {
    let dx = (x2 - x1) / 2.0;
    let d = format!(
        "M{x1:.1} {y1:.1} C{:.1} {y1:.1} {:.1} {y2:.1} {x2:.1} {y2:.1}",
        x1 + dx,
        x2 - dx
    );
    html! { path class=(class) d=(d) {} }
}

fn column(nodes: &[Node], (x, w): (f64, f64), height: f64, class: &str) -> Markup {
    html! {
        @for (i, n) in nodes.iter().enumerate() {
            @let cy = y(i, nodes.len(), height);
            a href=(n.href) class=(class) {
                title { (n.label) }
                rect x=(x) y=(format!("{:.1}", cy - BOX_H / 2.0)) width=(w) height=(BOX_H) rx="4" {}
                text x=(format!("{:.1}", x + 8.0)) y=(format!("{:.1}", cy + 4.5)) { (n.label) }
            }
        }
    }
}

/// The SVG element (used inline and standalone). Links are relative to the site root.
fn svg(catalog: &Catalog) -> Markup {
    let l = layout(catalog);
    let rows = l
        .producers
        .len()
        .max(l.subjects.len())
        .max(l.consumers.len());
    let height = rows as f64 * ROW + 2.0 * MARGIN;
    let [p, s, c] = COLUMNS;
    let view_box = format!("0 0 {WIDTH} {height:.0}");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(view_box) width=(WIDTH) height=(format!("{height:.0}")) role="img" aria-label="Producers, subjects and consumers" {
            style { "path{fill:none;stroke-width:1.2;opacity:.55}path.send{stroke:#2a6fb0}path.receive{stroke:#b05a2a}rect{stroke:#555;stroke-width:1}a.producer rect{fill:#dcebf8}a.subject rect{fill:#f4f4f4}a.consumer rect{fill:#f8e6dc}text{font:12px system-ui,sans-serif;fill:#111}" }
            text x=(p.0) y="16" { "Producers" }
            text x=(s.0) y="16" { "Subjects" }
            text x=(c.0) y="16" { "Consumers" }
            @for (pi, si) in &l.sends {
                (edge(p.0 + p.1, y(*pi, l.producers.len(), height), s.0, y(*si, l.subjects.len(), height), "send"))
            }
            @for (si, ci) in &l.receives {
                (edge(s.0 + s.1, y(*si, l.subjects.len(), height), c.0, y(*ci, l.consumers.len(), height), "receive"))
            }
            (column(&l.producers, p, height, "producer"))
            (column(&l.subjects, s, height, "subject"))
            (column(&l.consumers, c, height, "consumer"))
        }
    }
}

/// `graph.svg`: the graph as a file of its own.
pub(super) fn standalone(catalog: &Catalog) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
        svg(catalog).into_string()
    )
}

/// The body of `graph.html`.
pub(super) fn page_body(catalog: &Catalog) -> Markup {
    html! {
        p { "Who publishes each subject and who consumes it; every box links to its page. "
            "Topics open to every backend service (producers = [\"*\"] in the catalog) are drawn from one " code { (EVERY_SERVICE) } " node. "
            a href="graph.svg" { "The SVG alone." } }
        div.graph { (trusted(svg(catalog).into_string())) }
    }
}
