use super::*;
use crate::domains::DomainBlockNumber;

pub(crate) const CHAIN: Blake3Hash = Blake3Hash([3; 32]);

pub(crate) fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(crate) fn who(seed: u8) -> [u8; 32] {
    key(seed).verifying_key().to_bytes()
}

pub(crate) fn transfer(from: u8, to: u8, amount: Balance, nonce: u64) -> SignedTransfer {
    SignedTransfer::sign(
        DomainTransfer {
            chain: CHAIN,
            from: who(from),
            to: who(to),
            amount,
            fee: 1,
            nonce,
        },
        &key(from),
    )
}

pub(crate) fn module() -> BalancesModule {
    BalancesModule { chain: CHAIN }
}

pub(crate) fn genesis() -> BalancesState {
    module()
        .genesis(&[(who(1).to_vec(), 1_000), (who(2).to_vec(), 500)])
        .expect("genesis")
}

fn context(number: u64) -> BlockContext {
    BlockContext {
        number: DomainBlockNumber(number),
        parent_hash: Blake3Hash::ZERO,
        timestamp_ms: 1_000 * number,
        consensus_byte_fee: 1,
    }
}

#[test]
fn decoding_checks_chain_and_signature() {
    let module = module();
    let good = transfer(1, 2, 10, 0);
    assert_eq!(module.decode_transaction(&good.encode()), Ok(good.clone()));
    let mut forged = good.clone();
    forged.transfer.amount = 11;
    assert_eq!(
        module.decode_transaction(&forged.encode()),
        Err(ExecutionError::BadDomainSignature)
    );
    let other = BalancesModule {
        chain: Blake3Hash([4; 32]),
    };
    assert_eq!(
        other.decode_transaction(&good.encode()),
        Err(ExecutionError::WrongDomainChain)
    );
    assert!(matches!(
        module.decode_transaction(&good.encode()[..10]),
        Err(ExecutionError::Malformed(_))
    ));
}

#[test]
fn pre_dispatch_checks_run_in_sequence() {
    let module = module();
    let state = genesis();
    let ok = [transfer(1, 3, 10, 0), transfer(1, 3, 10, 1)];
    assert_eq!(module.check_transactions(&state, &ok), Ok(()));
    let gap = [transfer(1, 3, 10, 0), transfer(1, 3, 10, 2)];
    assert_eq!(
        module.check_transactions(&state, &gap),
        Err((1, ExecutionError::DomainNonce { expected: 1, got: 2 }))
    );
    let broke = [transfer(2, 3, 400, 0), transfer(2, 3, 99, 1)];
    assert_eq!(
        module.check_transactions(&state, &broke),
        Err((1, ExecutionError::DomainFunds))
    );
}

#[test]
fn blocks_trace_every_step_and_failures_do_not_abort() {
    let module = module();
    let state = genesis();
    let transactions = [
        transfer(1, 3, 10, 0),
        transfer(1, 3, 10, 5), // wrong nonce: recorded as failed
        transfer(2, 1, 100, 0),
    ];
    let executed = module
        .execute_block(&state, &context(1), &transactions)
        .expect("executes");
    assert_eq!(executed.trace.len(), transactions.len() + 2);
    assert_eq!(
        executed.outcomes.iter().map(|o| o.success).collect::<Vec<_>>(),
        vec![true, false, true]
    );
    assert_eq!(
        executed.trace[1], executed.trace[2],
        "a failed step changes nothing"
    );
    assert_eq!(executed.execution_fee, 2);
    assert_eq!(module.balance(&executed.state, &who(3)), 10);
    assert_eq!(module.balance(&executed.state, &who(1)), 1_000 - 11 + 100);
    // Conservation: balances fall by exactly the fees.
    let total = |state: &BalancesState| -> Balance {
        [1, 2, 3]
            .iter()
            .map(|seed| module.balance(state, &who(*seed)))
            .sum()
    };
    assert_eq!(total(&state) - total(&executed.state), executed.execution_fee);
    assert_eq!(executed.trace.last(), Some(&module.state_root(&executed.state)));
    // Deterministic.
    let again = module
        .execute_block(&state, &context(1), &transactions)
        .expect("executes");
    assert_eq!(again.trace, executed.trace);
}

#[test]
fn the_stateless_executor_reproduces_every_trace_entry() {
    let module = module();
    let state = genesis();
    let context = context(7);
    let transactions = [
        transfer(1, 3, 10, 0),
        transfer(1, 3, 10, 9),
        transfer(3, 2, 5, 0),
        transfer(2, 2, 5, 0),
    ];
    let executed = module
        .execute_block(&state, &context, &transactions)
        .expect("executes");
    // Re-run each step from the state before it, with only its witness.
    let mut pre = state.clone();
    let mut steps = vec![Step::Initialize(&context)];
    for (index, transaction) in transactions.iter().enumerate() {
        steps.push(Step::Transaction {
            context: &context,
            index: u32::try_from(index).expect("small"),
            transaction,
        });
    }
    steps.push(Step::Finalize(&context));
    for (step, expected) in steps.into_iter().zip(&executed.trace) {
        let witness = module.step_witness(&pre, step).expect("witness");
        assert_eq!(witness.tree.root(), pre.root());
        assert_eq!(module.execute_step(&witness, step), Ok(*expected));
        match step {
            Step::Initialize(context) => initialize(&mut pre, context).expect("in memory"),
            Step::Transaction { transaction, .. } => {
                apply(&mut pre, &transaction.transfer).expect("in memory");
            }
            Step::Finalize(_) => {}
        }
    }
    // A witness missing the step's keys, or with a changed value, is refused.
    let step = Step::Transaction {
        context: &context,
        index: 0,
        transaction: &transactions[0],
    };
    let mut witness = module.step_witness(&state, step).expect("witness");
    witness.values.clear();
    assert_eq!(
        module.execute_step(&witness, step),
        Err(ExecutionError::WitnessIncomplete)
    );
    let mut witness = module.step_witness(&state, step).expect("witness");
    let first = *witness.values.keys().next().expect("a value");
    witness.values.insert(
        first,
        codec::encode(&Entry::Account(Account {
            balance: 1_000_000,
            nonce: 0,
        })),
    );
    assert_eq!(
        module.execute_step(&witness, step),
        Err(ExecutionError::WitnessValue)
    );
    let narrow = StepWitness {
        tree: state.witness(&[]),
        values: BTreeMap::new(),
    };
    assert_eq!(
        module.execute_step(&narrow, step),
        Err(ExecutionError::WitnessIncomplete)
    );
}
