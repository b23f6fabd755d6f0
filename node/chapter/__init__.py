"""One chapter's node: `ChapterNode` wires the store, ingest and the rules together and
answers what the federation, the web app and the duties ask (chapter_node), and the
metrics it reports (metrics)."""
