"""Task suites from public formats: BFCL's categories (single- and multi-turn), their references and graders."""
