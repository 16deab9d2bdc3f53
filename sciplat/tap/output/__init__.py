"""Result serializations: VOTable (BINARY2, TABLEDATA), CSV, JSON; pure functions of a result."""
