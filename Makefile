# The two commands a newcomer needs: `make up` and `make test`. Both bootstrap first.
.PHONY: up test bootstrap lint typecheck down clean

up:
	@scripts/bootstrap.sh up
	.venv/bin/sciplat up

test:
	@scripts/bootstrap.sh test
	@scripts/run-tests.sh

down:
	.venv/bin/sciplat down

lint:
	.venv/bin/ruff check sciplat tests bench

typecheck:
	.venv/bin/mypy

clean:
	rm -rf .venv .cache .pytest_cache .ruff_cache .mypy_cache
