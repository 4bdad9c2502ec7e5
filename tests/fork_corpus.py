"""A news corpus big enough to exercise our fork of Whoosh, generated at test time from our own text.

The fixture corpus (tests/fixtures/news, eight articles) and corpus/ (the sample article) are too
small for what the fork guards must cover: posting lists longer than one of Whoosh's 128-posting
blocks, positions past 255 (the wider array type), parts big enough to compress, a term index
past 64 KB. `write_generated_news` recombines their sentences into 64 articles (about 260
sections): real Japanese, and the same bytes on every run (seeded shuffles). Docnum gaps stay
under 256 here; the livedoor runs cover wide gaps.

`update_generated_news` then edits and removes some articles, as a user would before an
incremental reindex: the index gets a second segment and deleted sections in the first.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = (PROJECT / "tests" / "fixtures" / "news", PROJECT / "corpus")
ARTICLES = 64
CATEGORIES = ("economy", "sports", "tech", "world")
LONG_EVERY = 16  # every 16th article has a section of about 1,100 characters: positions past 255
_SENTENCE = re.compile(r"[^。]+。」?")


def fixture_text() -> tuple[list[str], list[str], list[str]]:
    """(titles, headings, sentences) of the fixture articles and the sample article."""
    titles, headings, sentences = [], [], []
    for source in SOURCES:
        for path in sorted(source.rglob("*")):
            if path.suffix not in (".txt", ".md") or path.name.startswith("README"):
                continue
            lines = path.read_text(encoding="utf-8").splitlines()
            if lines[0].startswith("http"):  # livedoor layout: URL, date, title, body
                titles.append(lines[2])
                body = lines[3:]
            else:  # our text format: `# title`, metadata, `## heading` sections
                titles.append(lines[0].removeprefix("# "))
                body = [line for line in lines[1:] if not re.match(r"^\S+: ", line)]
            for line in body:
                if line.startswith("## "):
                    headings.append(line[3:])
                else:
                    sentences.extend(match.strip() for match in _SENTENCE.findall(line))
    return titles, headings, sentences


def generated_article(number: int, titles: list[str], headings: list[str], sentences: list[str]) -> str:
    """Article `number` in Midashi's text format: a title, a date, a lead and two to four
    headed sections of shuffled fixture sentences (the lead's first one says 日本) (one long section
    every LONG_EVERY articles)."""
    chance = random.Random(number)
    about_japan = [sentence for sentence in sentences if "日本" in sentence]  # a common word, as in news
    lines = [
        f"# {titles[number % len(titles)]}（第{number}報）",
        "出典: ミダシ生成通信",
        f"日付: {2010 + number % 3}-{1 + number % 12:02d}-{1 + number % 28:02d}",
        "",
        chance.choice(about_japan) + chance.choice(sentences),
    ]
    for section in range(chance.randint(2, 4)):
        long = section == 0 and number % LONG_EVERY == 0
        lines += ["", f"## {chance.choice(headings)}", ""]
        lines.append("".join(chance.sample(sentences, 22 if long else chance.randint(2, 5))))
    return "\n".join(lines) + "\n"


def write_generated_news(folder: Path, articles: int = ARTICLES) -> Path:
    """Write the generated articles under `folder`, a category folder each, and return `folder`."""
    titles, headings, sentences = fixture_text()
    for number in range(articles):
        category = folder / CATEGORIES[number % len(CATEGORIES)]
        category.mkdir(parents=True, exist_ok=True)
        (category / f"gen-{number:04d}.md").write_text(
            generated_article(number, titles, headings, sentences), encoding="utf-8"
        )
    return folder


def update_generated_news(folder: Path, every: int = 10) -> tuple[int, int]:
    """Rewrite every `every`-th article (its sections reshuffled) and remove the one after it;
    return (updated, removed)."""
    titles, headings, sentences = fixture_text()
    updated = removed = 0
    for path in sorted(folder.rglob("gen-*.md")):
        number = int(path.stem.split("-")[1])
        if number % every == 0:
            path.write_text(generated_article(number + 100_000, titles, headings, sentences), encoding="utf-8")
            updated += 1
        elif number % every == 1:
            path.unlink()
            removed += 1
    return updated, removed
