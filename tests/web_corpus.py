"""The small corpus the web tests search: corpus/ plus synthetic articles, indexed once per session.

The synthetic articles give the page something to group, facet and page through (14 articles on
半導体 across categories, sources, years and months), one hostile article whose title, body
and URL carry markup and a `javascript:` URL, which must only ever show as text, and one long
digest (`DIGEST_ID`) of the fixture news articles, a section each after an unheaded lead, for the
article page's table of contents and match navigation.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from search.indexing import reindex

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
FIXTURE_NEWS = Path(__file__).resolve().parent / "fixtures" / "news"
HOSTILE_ID = "evil/hostile"
DIGEST_ID = "digest/week"
DIGEST_TITLE = "今週のニュースまとめ：サッカー日本代表、香川真司の移籍、円高とスマートフォン"
CHIP_ARTICLES = 14
CATEGORIES = ("economy", "tech")
SOURCES = ("テスト通信", "ミダシ新聞")

HOSTILE = """# <script>alert(1)</script>危険な記事の見出し
出典: <b>悪意</b>
日付: 2012-03-04
URL: javascript:alert(1)
カテゴリ: evil

この記事の本文には <script>alert(1)</script> と <img src=x onerror=alert(1)> があり、半導体の話もする。

## <i>斜体</i>の小見出し

<a href="javascript:alert(2)">リンク</a> は文字として表示されるべきだ。
"""

_built: dict[str, Path] = {}


def digest_article() -> str:
    """One long article: a lead without a heading, then each fixture news article that does not
    mention 半導体 (the 半導体 counts stay those of the chip articles) as a section under its title."""
    sections = []
    for path in sorted(FIXTURE_NEWS.glob("*/*.txt")):
        _url, _date, title, body = path.read_text(encoding="utf-8").split("\n", 3)
        if "半導体" not in body + title:
            sections.append(f"## {title}\n\n{body.strip()}\n")
    lead = (
        "今週の主なニュースを分野ごとにまとめた。"
        "スポーツでは日本代表の合宿と移籍の話題、経済では円高、技術ではスマートフォンの動きが目立った。"
    )
    return f"""# {DIGEST_TITLE}
出典: ミダシ新聞
日付: 2012-06-09
URL: https://example.com/digest/week
カテゴリ: digest

{lead}

""" + "\n".join(sections)


def chip_article(number: int) -> str:
    """A dated article whose several sections mention 半導体, so results have other matches."""
    year = 2011 + number % 2
    month = 1 + number % 6
    return f"""# 半導体ニュース第{number}報：工場の新設と輸出の行方
出典: {SOURCES[number % 2]}
日付: {year}-{month:02d}-{10 + number:02d}
URL: https://example.com/chips/{number}
カテゴリ: {CATEGORIES[number % 2]}

第{number}報。国内の半導体メーカーが新しい工場の建設を発表した。

## 輸出の見通し

半導体の輸出は前年より増える見込みだと業界団体は説明した。

## 地域経済への影響

工場の周辺では雇用が増え、商店街にも活気が戻っている。半導体関連の求人も多い。

## 今後の課題

電力と水の確保が課題で、半導体の生産には大量の純水が欠かせない。
"""


def build_web_index(tmp_root: Path) -> Path:
    """Write the corpus under `tmp_root` and index it; once per process, whoever asks first."""
    if "root" not in _built:
        corpus = tmp_root / "corpus"
        shutil.copytree(CORPUS, corpus)
        (corpus / "chips").mkdir()
        for number in range(1, CHIP_ARTICLES + 1):
            (corpus / "chips" / f"chip-{number:02d}.md").write_text(chip_article(number), encoding="utf-8")
        (corpus / "evil").mkdir()
        (corpus / "evil" / "hostile.md").write_text(HOSTILE, encoding="utf-8")
        (corpus / "digest").mkdir()
        (corpus / "digest" / "week.md").write_text(digest_article(), encoding="utf-8")
        index = tmp_root / "index"
        reindex([corpus], index)
        _built["root"] = index
    return _built["root"]
