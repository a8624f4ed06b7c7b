"""What the agent remembers between runs: the exemplar bank and its retrieval (exemplars, retrieval,
tool_retrieval), Reflexion's reflections, ExpeL insights and the playbook with its proposals and attribution."""
