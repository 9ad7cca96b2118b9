"""The knowledge API over plain HTTP (httpx, which the openai SDK brings) and a chat
completion through the official `openai` SDK that is answered from an uploaded document.

Usage: knowledge_api.py BASE_URL FAQ_MARKDOWN

Prints "ok: ..." and exits 0 when every check passes.
"""

import io
import sys

import httpx
from fpdf import FPDF
from openai import OpenAI

from common import error_code, metadata_of


def warranty_pdf() -> bytes:
    """A two-page PDF as a real producer writes it (fpdf2: compressed streams, core font)."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Warranty\n\nEvery backpack we sell carries a lifetime warranty against "
                         "manufacturing defects. Keep the receipt as proof of purchase.")
    pdf.add_page()
    pdf.multi_cell(0, 8, "Care\n\nWash the fabric by hand in cold water and let it dry in the shade.")
    out = io.BytesIO()
    pdf.output(out)
    return out.getvalue()


def main(base_url: str, faq_path: str) -> None:
    http = httpx.Client(base_url=base_url, timeout=60)
    faq = open(faq_path, "rb").read()

    r = http.post("/knowledge/documents", files={"file": ("faq.md", faq, "text/markdown")})
    assert r.status_code == 201, (r.status_code, r.text)
    doc = r.json()
    assert doc["id"] == "faq.md" and doc["object"] == "knowledge.document", doc
    assert doc["chunks"] == 28, doc

    html = b"<html><body><h1>Opening hours</h1><p>The Lisbon store opens at 9&nbsp;am.</p></body></html>"
    r = http.post("/knowledge/documents", data={"id": "lisbon"},
                  files={"file": ("store.html", html, "text/html")})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "lisbon", r.text

    pdf = warranty_pdf()
    r = http.post("/knowledge/documents", files={"file": ("warranty.pdf", pdf, "application/pdf")})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "warranty.pdf" and r.json()["chunks"] >= 1, r.text

    # Bad uploads: the protocol's own error shape and status, and nothing is lost.
    r = http.post("/knowledge/documents", files={"file": ("a.docx", b"PK\x03\x04", None)})
    assert r.status_code == 415 and error_code(r) == "unsupported_file_type", r.text
    r = http.post("/knowledge/documents", files={"file": ("cut.pdf", pdf[: len(pdf) // 3], "application/pdf")})
    assert r.status_code == 422 and error_code(r) == "invalid_file", r.text
    r = http.post("/knowledge/documents", files={"file": ("bad.txt", b"\xff\xfe\x00", "text/plain")})
    assert r.status_code == 422 and error_code(r) == "invalid_file", r.text
    r = http.post("/knowledge/documents", files={"file": ("big.txt", b"a" * (10 * 1024 * 1024 + 1), "text/plain")})
    assert r.status_code == 413 and error_code(r) == "file_too_large", r.text
    r = http.post("/knowledge/documents", data={"id": "x"})
    assert r.status_code == 400 and error_code(r) == "missing_required_parameter", r.text

    listed = http.get("/knowledge/documents").json()["data"]
    assert sorted(d["id"] for d in listed) == ["faq.md", "lisbon", "warranty.pdf"], listed

    r = http.post("/knowledge/search", json={"query": "Can you fix a broken zipper?", "k": 3})
    assert r.status_code == 200, r.text
    hits = r.json()["data"]
    assert hits and hits[0]["heading"].endswith("Repairs"), hits
    r = http.post("/knowledge/search", json={"query": "Is there a guarantee on bags?", "k": 3})
    hits = r.json()["data"]
    assert hits and hits[0]["document_id"] == "warranty.pdf" and "lifetime" in hits[0]["text"], hits
    r = http.post("/knowledge/search", json={"query": "x", "mode": "fuzzy"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "mode", r.text

    # A chat turn: the orchestrator looks the question up and the reply's metadata says so.
    client = OpenAI(base_url=base_url, api_key="sk-local")
    c = client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "How much does it cost to mend a zip?"}])
    meta = metadata_of(c)
    assert meta["degraded"] == "false" and meta["degrade_reasons"] == "", meta
    assert meta["persona"] == "default", meta
    chunks = list(client.chat.completions.create(
        model="scripted", stream=True, messages=[{"role": "user", "content": "When does the Lisbon store open?"}]))
    last = metadata_of(chunks[-1])
    assert last["degraded"] == "false", last

    # A persona whose knowledge deadline is too short to embed the question: the turn is
    # still answered, marked degraded.
    c = client.chat.completions.create(
        model="hurried", messages=[{"role": "user", "content": "Do you ship to Canada?"}])
    meta = metadata_of(c)
    assert c.choices[0].message.content, c
    assert meta["persona"] == "hurried" and meta["degraded"] == "true", meta
    assert meta["degrade_reasons"] == "knowledge_timeout", meta

    r = http.delete("/knowledge/documents/lisbon")
    assert r.status_code == 200 and r.json()["deleted"] is True, r.text
    r = http.delete("/knowledge/documents/lisbon")
    assert r.status_code == 404 and error_code(r) == "document_not_found", r.text
    print("ok: knowledge upload, list, search, delete and context in chat")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
