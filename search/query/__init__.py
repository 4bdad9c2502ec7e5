"""Stage 4a, queries: a query string parsed into the Whoosh query Midashi ranks, with its
coverage plan for questions and the user's synonyms."""
