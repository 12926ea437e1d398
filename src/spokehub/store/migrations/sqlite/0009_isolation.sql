-- Poison isolation (docs/design.md, "Poison isolation"). isolation: 0 = none; 1 = suspect (its
-- worker died while it ran beside other runs: its next activation runs alone); 2 = running
-- alone in a child process of its worker; 3 = running alone in its worker's own process.
-- strikes: worker deaths charged to the run (only while it ran alone); dead-lettered at
-- max_recoveries. recoveries keeps counting every recovery, charged or not.
ALTER TABLE runs ADD COLUMN isolation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN strikes INTEGER NOT NULL DEFAULT 0;
