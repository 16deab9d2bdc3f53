from sciplat.cli import main

raise SystemExit(main())
