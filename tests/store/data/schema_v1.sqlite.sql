-- The first released schema (schema_info version 1), as the pre-Alembic code's
-- SQLModel.metadata.create_all made it on sqlite; generated from tables.py at 9bed4a5.

CREATE TABLE datasets (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	source VARCHAR, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);

CREATE UNIQUE INDEX ix_datasets_name ON datasets (name);

CREATE TABLE schema_info (
	id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE gold_sets (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	dataset_id INTEGER NOT NULL, 
	ontology_name VARCHAR NOT NULL, 
	source VARCHAR, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_gold_name_version UNIQUE (name, version), 
	FOREIGN KEY(dataset_id) REFERENCES datasets (id)
);

CREATE INDEX ix_gold_sets_name ON gold_sets (name);

CREATE TABLE items (
	id INTEGER NOT NULL, 
	dataset_id INTEGER NOT NULL, 
	external_id VARCHAR NOT NULL, 
	content_hash VARCHAR NOT NULL, 
	row_number INTEGER, 
	payload JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_item_external UNIQUE (dataset_id, external_id), 
	FOREIGN KEY(dataset_id) REFERENCES datasets (id)
);

CREATE INDEX ix_items_content_hash ON items (content_hash);

CREATE INDEX ix_items_dataset_id ON items (dataset_id);

CREATE TABLE runs (
	id INTEGER NOT NULL, 
	run_key VARCHAR NOT NULL, 
	name VARCHAR, 
	dataset_id INTEGER NOT NULL, 
	ontology_name VARCHAR NOT NULL, 
	ontology_version VARCHAR NOT NULL, 
	ontology_hash VARCHAR NOT NULL, 
	ontology_path VARCHAR, 
	ontology JSON NOT NULL, 
	prompt_hash VARCHAR NOT NULL, 
	template VARCHAR NOT NULL, 
	task VARCHAR NOT NULL, 
	provider VARCHAR NOT NULL, 
	model VARCHAR NOT NULL, 
	base_url VARCHAR, 
	params JSON NOT NULL, 
	status VARCHAR NOT NULL, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	n_items INTEGER NOT NULL, 
	n_labeled INTEGER NOT NULL, 
	n_failed INTEGER NOT NULL, 
	n_cache_hits INTEGER NOT NULL, 
	tokens_in INTEGER NOT NULL, 
	tokens_out INTEGER NOT NULL, 
	cost_usd FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(dataset_id) REFERENCES datasets (id)
);

CREATE INDEX ix_runs_dataset_id ON runs (dataset_id);

CREATE INDEX ix_runs_prompt_hash ON runs (prompt_hash);

CREATE INDEX ix_runs_run_key ON runs (run_key);

CREATE TABLE eval_records (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	gold_set_id INTEGER, 
	experiment VARCHAR, 
	metrics JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(gold_set_id) REFERENCES gold_sets (id)
);

CREATE INDEX ix_eval_records_experiment ON eval_records (experiment);

CREATE INDEX ix_eval_records_run_id ON eval_records (run_id);

CREATE TABLE gold_labels (
	id INTEGER NOT NULL, 
	gold_set_id INTEGER NOT NULL, 
	item_id INTEGER NOT NULL, 
	label JSON NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_gold_item UNIQUE (gold_set_id, item_id), 
	FOREIGN KEY(gold_set_id) REFERENCES gold_sets (id), 
	FOREIGN KEY(item_id) REFERENCES items (id)
);

CREATE INDEX ix_gold_labels_gold_set_id ON gold_labels (gold_set_id);

CREATE INDEX ix_gold_labels_item_id ON gold_labels (item_id);

CREATE TABLE predictions (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	item_id INTEGER NOT NULL, 
	label JSON, 
	confidence FLOAT, 
	distribution JSON, 
	method VARCHAR, 
	samples JSON, 
	model VARCHAR NOT NULL, 
	prompt_hash VARCHAR NOT NULL, 
	tokens_in INTEGER NOT NULL, 
	tokens_out INTEGER NOT NULL, 
	latency_ms FLOAT NOT NULL, 
	cache_hit BOOLEAN NOT NULL, 
	attempts INTEGER NOT NULL, 
	error TEXT, 
	raw TEXT, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_prediction_run_item UNIQUE (run_id, item_id), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(item_id) REFERENCES items (id)
);

CREATE INDEX ix_predictions_item_id ON predictions (item_id);

CREATE INDEX ix_predictions_run_id ON predictions (run_id);

CREATE TABLE review_tasks (
	id INTEGER NOT NULL, 
	queue VARCHAR NOT NULL, 
	item_id INTEGER NOT NULL, 
	run_id INTEGER, 
	prediction_id INTEGER, 
	ontology_path VARCHAR, 
	status VARCHAR NOT NULL, 
	priority FLOAT NOT NULL, 
	reasons JSON NOT NULL, 
	suggestion JSON, 
	confidence FLOAT, 
	alternatives JSON, 
	required_decisions INTEGER NOT NULL, 
	reviewers_per_item INTEGER NOT NULL, 
	is_honeypot BOOLEAN NOT NULL, 
	gold_label JSON, 
	final_label JSON, 
	final_source VARCHAR, 
	claimed_by VARCHAR, 
	lease_expires_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_task_queue_item UNIQUE (queue, item_id), 
	FOREIGN KEY(item_id) REFERENCES items (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(prediction_id) REFERENCES predictions (id)
);

CREATE INDEX ix_review_tasks_item_id ON review_tasks (item_id);

CREATE INDEX ix_review_tasks_queue ON review_tasks (queue);

CREATE INDEX ix_task_pick ON review_tasks (queue, status, priority);

CREATE TABLE decisions (
	id INTEGER NOT NULL, 
	task_id INTEGER NOT NULL, 
	item_id INTEGER NOT NULL, 
	reviewer VARCHAR NOT NULL, 
	action VARCHAR NOT NULL, 
	label JSON, 
	label_before JSON, 
	note TEXT, 
	reasons JSON NOT NULL, 
	seconds FLOAT, 
	undone BOOLEAN NOT NULL, 
	undoes_id INTEGER, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(task_id) REFERENCES review_tasks (id), 
	FOREIGN KEY(item_id) REFERENCES items (id)
);

CREATE INDEX ix_decisions_item_id ON decisions (item_id);

CREATE INDEX ix_decisions_reviewer ON decisions (reviewer);

CREATE INDEX ix_decisions_task_id ON decisions (task_id);

CREATE TABLE review_claims (
	id INTEGER NOT NULL, 
	task_id INTEGER NOT NULL, 
	reviewer VARCHAR NOT NULL, 
	lease_expires_at DATETIME NOT NULL, 
	adjudicating BOOLEAN NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_claim_task_reviewer UNIQUE (task_id, reviewer), 
	FOREIGN KEY(task_id) REFERENCES review_tasks (id)
);

CREATE INDEX ix_review_claims_reviewer ON review_claims (reviewer);

CREATE INDEX ix_review_claims_task_id ON review_claims (task_id);
