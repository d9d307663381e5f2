//! Small hand-assembled EVM contracts for tests and benches (no Solidity compiler is available).
//!
//! - The **store** contract keeps one word: a call with 32 bytes of call data stores them in slot 0 and
//!   emits `LOG1(topic = keccak256("Stored(uint256)"), data = the word)`; a call with empty call data
//!   returns slot 0.
//! - The **token** is ERC-20-like: `transfer(address,uint256)` (selector `a9059cbb`) moves balance
//!   and emits `Transfer(from, to, amount)` with the standard topic; `balanceOf(address)`
//!   (`70a08231`) returns a balance. Its storage layout is simpler than Solidity's: the balance of
//!   `a` is in the slot whose number is `a` itself. The constructor credits the whole supply to the
//!   deployer.
//!
//! Each contract is deployed by init code that copies the runtime code into memory and returns it.
//! Jump targets are labels resolved by a tiny assembler, so the listings below can change safely.

use alloy_primitives::{Address, B256, U256, keccak256};
use revm::bytecode::opcode;

/// `keccak256("Stored(uint256)")`: the store contract's log topic.
pub fn stored_topic() -> B256 {
    keccak256("Stored(uint256)")
}

/// `keccak256("Transfer(address,address,uint256)")`: the ERC-20 transfer event topic.
pub fn transfer_topic() -> B256 {
    keccak256("Transfer(address,address,uint256)")
}

/// The token's `transfer(address,uint256)` selector.
pub const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

/// The token's `balanceOf(address)` selector.
pub const BALANCE_OF_SELECTOR: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];

/// A minimal assembler: opcodes, pushes, and labels for jumps (always `PUSH2`).
#[derive(Debug, Default)]
struct Assembler {
    code: Vec<u8>,
    labels: Vec<(&'static str, usize)>,
    jumps: Vec<(&'static str, usize)>,
}

impl Assembler {
    fn op(&mut self, op: u8) -> &mut Self {
        self.code.push(op);
        self
    }

    /// `PUSHn` of `bytes` (1 to 32 bytes).
    fn push(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u8::try_from(bytes.len()).expect("at most 32 bytes");
        assert!((1..=32).contains(&len), "a push carries 1 to 32 bytes");
        self.code.push(opcode::PUSH1 + len - 1);
        self.code.extend_from_slice(bytes);
        self
    }

    /// `PUSH2` of the offset of `label`, resolved by [`Assembler::finish`].
    fn push_label(&mut self, label: &'static str) -> &mut Self {
        self.code.push(opcode::PUSH2);
        self.jumps.push((label, self.code.len()));
        self.code.extend_from_slice(&[0, 0]);
        self
    }

    /// A `JUMPDEST` named `label`.
    fn label(&mut self, label: &'static str) -> &mut Self {
        self.labels.push((label, self.code.len()));
        self.op(opcode::JUMPDEST)
    }

    fn finish(&mut self) -> Vec<u8> {
        for (label, at) in &self.jumps {
            let (_, offset) = self
                .labels
                .iter()
                .find(|(name, _)| name == label)
                .expect("every jump has its label");
            let offset = u16::try_from(*offset).expect("contracts are small");
            self.code[*at..*at + 2].copy_from_slice(&offset.to_be_bytes());
        }
        std::mem::take(&mut self.code)
    }
}

/// Init code returning `runtime`, after running `constructor`:
/// `constructor; PUSH2 len; DUP1; PUSH2 offset; PUSH1 0; CODECOPY; PUSH1 0; RETURN; runtime`
/// (`CODECOPY(dest 0, offset, len)` then `RETURN(0, len)`; the prefix after the constructor is 13 bytes).
fn deployer(constructor: &[u8], runtime: &[u8]) -> Vec<u8> {
    let len = u16::try_from(runtime.len()).expect("contracts are small");
    let offset = u16::try_from(constructor.len() + 13).expect("contracts are small");
    let mut code = constructor.to_vec();
    let mut asm = Assembler::default();
    asm.push(&len.to_be_bytes())
        .op(opcode::DUP1)
        .push(&offset.to_be_bytes())
        .push(&[0])
        .op(opcode::CODECOPY)
        .push(&[0])
        .op(opcode::RETURN);
    code.extend(asm.finish());
    debug_assert_eq!(code.len(), usize::from(offset));
    code.extend_from_slice(runtime);
    code
}

/// The store contract's runtime code.
pub fn store_runtime() -> Vec<u8> {
    let mut asm = Assembler::default();
    // Empty call data: return slot 0.
    asm.op(opcode::CALLDATASIZE)
        .op(opcode::ISZERO)
        .push_label("get")
        .op(opcode::JUMPI);
    // value = calldata[0..32]; slot 0 = value (DUP1 keeps a copy; SSTORE pops key 0 then value).
    asm.push(&[0])
        .op(opcode::CALLDATALOAD)
        .op(opcode::DUP1)
        .push(&[0])
        .op(opcode::SSTORE);
    // memory[0..32] = value; LOG1(offset 0, size 32, topic): pushed topic, size, offset.
    asm.push(&[0])
        .op(opcode::MSTORE)
        .push(stored_topic().as_slice())
        .push(&[32])
        .push(&[0])
        .op(opcode::LOG1)
        .op(opcode::STOP);
    // get: memory[0..32] = slot 0; RETURN(0, 32).
    asm.label("get")
        .push(&[0])
        .op(opcode::SLOAD)
        .push(&[0])
        .op(opcode::MSTORE)
        .push(&[32])
        .push(&[0])
        .op(opcode::RETURN);
    asm.finish()
}

/// The store contract's init code.
pub fn store_init_code() -> Vec<u8> {
    deployer(&[], &store_runtime())
}

/// The token's runtime code.
pub fn token_runtime() -> Vec<u8> {
    let address_mask = [0xff; 20];
    let mut asm = Assembler::default();
    // selector = calldata[0..32] >> 224; dispatch on it, revert on anything else.
    asm.push(&[0])
        .op(opcode::CALLDATALOAD)
        .push(&[0xe0])
        .op(opcode::SHR)
        .op(opcode::DUP1)
        .push(&TRANSFER_SELECTOR)
        .op(opcode::EQ)
        .push_label("transfer")
        .op(opcode::JUMPI)
        .op(opcode::DUP1)
        .push(&BALANCE_OF_SELECTOR)
        .op(opcode::EQ)
        .push_label("balance_of")
        .op(opcode::JUMPI)
        .push(&[0])
        .op(opcode::DUP1)
        .op(opcode::REVERT);
    // transfer: stack [selector] → [to, amount, from_balance].
    asm.label("transfer")
        .op(opcode::POP)
        .push(&[4])
        .op(opcode::CALLDATALOAD)
        .push(&address_mask)
        .op(opcode::AND)
        .push(&[0x24])
        .op(opcode::CALLDATALOAD)
        .op(opcode::CALLER)
        .op(opcode::SLOAD);
    // if from_balance < amount: revert (LT pops a = from_balance, b = amount: a < b).
    asm.op(opcode::DUP2)
        .op(opcode::DUP2)
        .op(opcode::LT)
        .push_label("fail")
        .op(opcode::JUMPI);
    // storage[caller] = from_balance − amount (DUP2, SWAP1 puts from_balance on top for SUB).
    asm.op(opcode::DUP2)
        .op(opcode::SWAP1)
        .op(opcode::SUB)
        .op(opcode::CALLER)
        .op(opcode::SSTORE);
    // storage[to] += amount (after the debit, so a transfer to oneself changes nothing).
    asm.op(opcode::DUP2)
        .op(opcode::SLOAD)
        .op(opcode::DUP2)
        .op(opcode::ADD)
        .op(opcode::DUP3)
        .op(opcode::SSTORE);
    // memory[0..32] = amount; LOG3(0, 32, Transfer topic, from = caller, to).
    asm.push(&[0])
        .op(opcode::MSTORE)
        .op(opcode::CALLER)
        .push(transfer_topic().as_slice())
        .push(&[32])
        .push(&[0])
        .op(opcode::LOG3);
    // return true.
    asm.push(&[1])
        .push(&[0])
        .op(opcode::MSTORE)
        .push(&[32])
        .push(&[0])
        .op(opcode::RETURN);
    asm.label("fail").push(&[0]).op(opcode::DUP1).op(opcode::REVERT);
    // balance_of: return storage[calldata[4..36]].
    asm.label("balance_of")
        .op(opcode::POP)
        .push(&[4])
        .op(opcode::CALLDATALOAD)
        .op(opcode::SLOAD)
        .push(&[0])
        .op(opcode::MSTORE)
        .push(&[32])
        .push(&[0])
        .op(opcode::RETURN);
    asm.finish()
}

/// The token's init code: `PUSH32 supply; CALLER; SSTORE` (storage[deployer] = supply), then the
/// deployer.
pub fn token_init_code(supply: U256) -> Vec<u8> {
    let mut asm = Assembler::default();
    asm.push(&supply.to_be_bytes::<32>())
        .op(opcode::CALLER)
        .op(opcode::SSTORE);
    deployer(&asm.finish(), &token_runtime())
}

/// Call data of `transfer(to, amount)`.
pub fn transfer_call(to: Address, amount: U256) -> Vec<u8> {
    let mut data = TRANSFER_SELECTOR.to_vec();
    data.extend_from_slice(B256::left_padding_from(to.as_slice()).as_slice());
    data.extend_from_slice(&amount.to_be_bytes::<32>());
    data
}

/// Call data of `balanceOf(who)`.
pub fn balance_of_call(who: Address) -> Vec<u8> {
    let mut data = BALANCE_OF_SELECTOR.to_vec();
    data.extend_from_slice(B256::left_padding_from(who.as_slice()).as_slice());
    data
}

/// The token's storage slot holding `who`'s balance.
pub fn token_balance_slot(who: Address) -> U256 {
    U256::from_be_slice(who.as_slice())
}
