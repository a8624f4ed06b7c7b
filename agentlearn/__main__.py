from agentlearn.cli import main

raise SystemExit(main())
