// bench/cold.mjs loads this empty classic script: what any <script src> costs a fresh page here.
