"""The benchmark: the app and a naive baseline under N concurrent chats (see BENCHMARKS.md)."""
