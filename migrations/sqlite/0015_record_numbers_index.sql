-- Only numbers and dates are compared as numbers: the text values of records (all of an
-- audit entry's, most of a list value's) no longer get an entry with an empty number.
-- Every record write (an audit entry per delete, upload and edit) had one per field.
DROP INDEX record_values_field_n;
CREATE INDEX record_values_n ON record_values(field, n) WHERE n IS NOT NULL;
