-- Records written without their value rows yet: the audit entries of a burst of deletes.
-- Indexing an entry's seven fields was most of a delete's writes (about 25 index entries
-- against 5 for the delete itself); the writer indexes listed records later, many at a
-- time (store::sqlite_index RecordIndexer), and a search of records has it finish first.
CREATE TABLE records_pending (
    seq INTEGER PRIMARY KEY REFERENCES records(seq) ON DELETE CASCADE
);
