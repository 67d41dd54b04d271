-- Trashed assets whose value rows are still in their catalog's live scope. A delete
-- marks the asset trashed and lists it here instead of moving its value rows at once:
-- moving them rewrites about twenty index pages per asset, scattered over the value
-- indexes, which is what limited a burst of deletes. The writer moves them later, many
-- at a time and when no write is waiting (store::sqlite TrashSweeper); until then,
-- searches of the live scope leave out the assets listed here.
CREATE TABLE trash_pending (
    seq INTEGER PRIMARY KEY REFERENCES assets(seq) ON DELETE CASCADE
);
